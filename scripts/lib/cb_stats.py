"""The uncertainty of a median (or p99), and verdicts drawn from it.

A quantile's confidence interval here is the distribution-free one from order
statistics: of n independent samples, the number below the true q-quantile
is Binomial(n, q), so [x_(l), x_(u)] covers it with a probability that the
binomial gives exactly. No resampling, no random numbers: the same samples
always give the same interval. Two runs' intervals, each at SIDE_CONFIDENCE,
bound the ratio of their quantiles with a joint confidence of at least
CONFIDENCE: [lo_B / hi_A, hi_B / lo_A].
"""
import functools
import math

CONFIDENCE = 0.95
SIDE_CONFIDENCE = math.sqrt(CONFIDENCE)    # two independent intervals: 0.975 each
NORMAL_FROM = 5000                         # above this many samples, the normal approximation


def _binomial_cdf_table(n, q):
    """[P(X <= k) for k in 0..n], X ~ Binomial(n, q), in log space to avoid underflow."""
    log_q, log_p = math.log(q), math.log1p(-q)
    logs = [math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)
            + k * log_q + (n - k) * log_p for k in range(n + 1)]
    top = max(logs)
    weights = [math.exp(v - top) for v in logs]
    total = sum(weights)
    cdf, acc = [], 0.0
    for w in weights:
        acc += w
        cdf.append(acc / total)
    return cdf


@functools.lru_cache(maxsize=256)
def _ranks_exact(n, q, tail):
    """1-based ranks (l, u) with P(X <= l-1) <= tail and P(X >= u) <= tail; None if off the sample."""
    cdf = _binomial_cdf_table(n, q)
    low = 0        # largest l with cdf[l-1] <= tail
    for k in range(n):
        if cdf[k] <= tail:
            low = k + 1
        else:
            break
    high = n + 1   # smallest u with 1 - cdf[u-1] <= tail
    for u in range(n, 0, -1):
        if 1 - cdf[u - 1] <= tail:
            high = u
        else:
            break
    return low, high


def _ranks_normal(n, q, tail):
    z = _normal_quantile(1 - tail)
    half = z * math.sqrt(n * q * (1 - q))
    return math.floor(n * q - half), math.ceil(n * q + half) + 1


def _normal_quantile(p):
    """Inverse of the standard normal CDF, by bisection on math.erf (plenty fast for us)."""
    lo, hi = -10.0, 10.0
    for _ in range(100):
        mid = (lo + hi) / 2
        if 0.5 * (1 + math.erf(mid / math.sqrt(2))) < p:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def quantile_interval(sorted_samples, q=0.5, confidence=SIDE_CONFIDENCE):
    """(low, high) bounding the q-quantile with `confidence`; None when the samples are too few."""
    n = len(sorted_samples)
    if n == 0:
        return None
    tail = (1 - confidence) / 2
    low, high = (_ranks_exact if n <= NORMAL_FROM else _ranks_normal)(n, q, tail)
    if low < 1 or high > n:
        return None
    return sorted_samples[low - 1], sorted_samples[high - 1]


def min_samples(q, confidence=SIDE_CONFIDENCE):
    """The fewest samples for which quantile_interval has an answer."""
    tail = (1 - confidence) / 2
    return math.ceil(math.log(tail) / math.log(max(q, 1 - q)))


def quantile(sorted_samples, q):
    """Nearest-rank q-quantile (collbench's definition)."""
    n = len(sorted_samples)
    return sorted_samples[max(0, min(n - 1, math.ceil(q * n) - 1))]


def ratio_interval(ref_sorted, new_sorted, q=0.5):
    """(point, low, high) of new's q-quantile over ref's; low/high None when too few samples."""
    if not ref_sorted or not new_sorted:
        return None, None, None
    ref_q, new_q = quantile(ref_sorted, q), quantile(new_sorted, q)
    point = new_q / ref_q if ref_q > 0 else None
    a, b = quantile_interval(ref_sorted, q), quantile_interval(new_sorted, q)
    if point is None or a is None or b is None or a[0] <= 0:
        return point, None, None
    return point, b[0] / a[1], b[1] / a[0]


def time_verdict(low, high, tolerance):
    """Verdict on a time ratio's interval (new/ref, lower is better).

    same: the whole interval within [1/(1+tol), 1+tol]; slower: all of it above 1;
    faster: all of it below 1; unclear: it holds 1 and reaches beyond the tolerance
    (or there are too few samples for an interval)."""
    if low is None or high is None:
        return "unclear"
    if low >= 1 / (1 + tolerance) and high <= 1 + tolerance:
        return "same"
    if low > 1:
        return "slower"
    if high < 1:
        return "faster"
    return "unclear"
