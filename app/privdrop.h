/*
 * privdrop.h: `qwenrelay serve` leaving root for the configured user.
 */
#ifndef QR_PRIVDROP_H
#define QR_PRIVDROP_H

#include <stddef.h>
#include <sys/types.h>

struct cfg;

enum priv_plan {
	PRIV_KEEP,	/* not root: run as we are */
	PRIV_DROP,	/* root with "user": switch to it */
	PRIV_ROOT,	/* root, no "user", run_as_root: stay root (warned) */
	PRIV_REFUSE	/* root, no "user", no run_as_root: refuse to serve */
};

/* What serve does about its uid; the one place this is decided. */
enum priv_plan	priv_plan(uid_t euid, const char *user, int run_as_root);

/*
 * Called by serve once, after the listen socket is open and before any
 * worker is forked.  As root with "user" set: give the unix socket at
 * addr (if addr is a path) to user:listen_group (mode 0660), create the
 * state dir and give it (and what is in it, and log_file) to the user,
 * then setgroups, setgid, setuid, each checked, and check that root
 * cannot be regained.  Returns 0 (and logs what it did), or -1 with the
 * reason and what to do in err; on -1 the process must exit.
 */
int	priv_drop(const struct cfg *, const char *addr, char *err,
	    size_t errlen);

#endif
