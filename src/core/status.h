/* Status codes returned by every engine call, and the logger.
 * An error is logged once, where it is first seen, with what was wrong and
 * what to do; callers above only pass the status on. */
#ifndef CB_STATUS_H
#define CB_STATUS_H

typedef enum cb_status {
    CB_OK = 0,
    CB_EUSAGE,    /* the user asked for something impossible (exit 2) */
    CB_EDEVICE,   /* device, port, GID or interface unusable (exit 2) */
    CB_ENOMEM,    /* allocation or registration failed */
    CB_ESYS,      /* a system call failed */
    CB_ETIMEOUT,  /* a peer never came within the timeout */
    CB_EPEER,     /* a peer closed the connection or its QP failed */
    CB_EDATA,     /* a result was wrong */
    CB_EINTERNAL, /* a bug in collbench */
    CB_ESTOPPED,  /* SIGINT or SIGTERM asked the run to stop (main exits 128 + the signal) */
} cb_status;

const char *cb_status_str(cb_status st);
/* Process exit code for a status: 0 for OK, 2 for what the user can fix
 * before a run (usage, device), 1 for everything else. */
int cb_status_exit_code(cb_status st);

/* Log lines go to stderr, prefixed "collbench[rank R@host]:" where the
 * launcher's environment tells the rank; stdout carries only the table. */
void cb_log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void cb_log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void cb_log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
