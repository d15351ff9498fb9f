/*
 * privdrop.c: serve's step from root to the configured user, in slowcgi's
 * order: open the socket as root, prepare what the user must own, then
 * setgroups, setgid, setuid (each checked), and only then accept.
 *
 * Kept apart from pool.c so the process model can change around one call.
 */
#include "config.h"

#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cfg.h"
#include "log.h"
#include "privdrop.h"
#include "util.h"

enum priv_plan
priv_plan(uid_t euid, const char *user, int run_as_root)
{
	if (euid != 0)
		return PRIV_KEEP;
	if (user != NULL && *user != '\0')
		return PRIV_DROP;
	return run_as_root ? PRIV_ROOT : PRIV_REFUSE;
}

/*
 * Give dir and everything under it to uid:gid, never following a symlink.
 * Returns 0 or a negative errno.  The state dir is shallow (stats/ below
 * it), so recursion depth is no concern.
 */
static int
chown_tree(int parent, const char *name, uid_t uid, gid_t gid)
{
	struct dirent	*de;
	struct stat	 sb;
	DIR		*d;
	int		 fd, rc = 0;

	if (fchownat(parent, name, uid, gid, AT_SYMLINK_NOFOLLOW) == -1)
		return -errno;
	if (fstatat(parent, name, &sb, AT_SYMLINK_NOFOLLOW) == -1)
		return -errno;
	if (!S_ISDIR(sb.st_mode))
		return 0;
	if ((fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC)) == -1)
		return -errno;
	if ((d = fdopendir(fd)) == NULL) {
		rc = -errno;
		close(fd);
		return rc;
	}
	while (rc == 0 && (de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		rc = chown_tree(dirfd(d), de->d_name, uid, gid);
	}
	closedir(d);
	return rc;
}

static int
resolve(const struct cfg *cfg, uid_t *uid, gid_t *gid, gid_t *sockgid,
    char *err, size_t errlen)
{
	struct passwd	 pwb, *pw = NULL;
	struct group	 grb, *gr = NULL;
	char		 buf[4096];

	if (getpwnam_r(cfg->user, &pwb, buf, sizeof(buf), &pw) != 0 ||
	    pw == NULL) {
		snprintf(err, errlen, "user \"%s\" does not exist; create it "
		    "(useradd --system %s) or fix \"user\" in %s", cfg->user,
		    cfg->user, cfg->path ? cfg->path : "the config");
		return -1;
	}
	if (pw->pw_uid == 0) {
		snprintf(err, errlen, "user \"%s\" is root; name an "
		    "unprivileged user in \"user\"", cfg->user);
		return -1;
	}
	*uid = pw->pw_uid;
	*gid = *sockgid = pw->pw_gid;
	if (*cfg->listen_group == '\0')
		return 0;
	if (getgrnam_r(cfg->listen_group, &grb, buf, sizeof(buf), &gr) != 0 ||
	    gr == NULL) {
		snprintf(err, errlen, "listen_group \"%s\" does not exist",
		    cfg->listen_group);
		return -1;
	}
	*sockgid = gr->gr_gid;
	return 0;
}

int
priv_drop(const struct cfg *cfg, const char *addr, char *err, size_t errlen)
{
	uid_t	uid;
	gid_t	gid, sockgid;
	int	rc;

	switch (priv_plan(geteuid(), cfg->user, cfg->run_as_root)) {
	case PRIV_KEEP:
		return 0;
	case PRIV_ROOT:
		log_warn("serving as root (run_as_root is true); set \"user\" "
		    "in production");
		return 0;
	case PRIV_REFUSE:
		snprintf(err, errlen, "refusing to serve as root: set \"user\" "
		    "(an unprivileged account, e.g. \"qwenrelay\") in %s, or "
		    "\"run_as_root\": true to serve as root anyway",
		    cfg->path ? cfg->path : "the config");
		return -1;
	case PRIV_DROP:
		break;
	}
	if (resolve(cfg, &uid, &gid, &sockgid, err, errlen) != 0)
		return -1;

	if (addr[0] == '/' && (chown(addr, uid, sockgid) == -1 ||
	    chmod(addr, 0660) == -1)) {
		snprintf(err, errlen, "cannot give %s to %s: %s", addr,
		    cfg->user, strerror(errno));
		return -1;
	}
	if ((rc = mkdir_p(cfg->state_dir, 0700)) != 0) {
		snprintf(err, errlen, "cannot create state dir %s: %s",
		    cfg->state_dir, strerror(-rc));
		return -1;
	}
	if ((rc = chown_tree(AT_FDCWD, cfg->state_dir, uid, gid)) != 0) {
		snprintf(err, errlen, "cannot give state dir %s to %s: %s",
		    cfg->state_dir, cfg->user, strerror(-rc));
		return -1;
	}
	if (strcmp(cfg->log_file, "stderr") != 0 &&
	    chown(cfg->log_file, uid, gid) == -1 && errno != ENOENT) {
		snprintf(err, errlen, "cannot give log_file %s to %s: %s",
		    cfg->log_file, cfg->user, strerror(errno));
		return -1;
	}

	if (setgroups(1, &gid) == -1 || setgid(gid) == -1 ||
	    setuid(uid) == -1) {
		snprintf(err, errlen, "cannot switch to user %s: %s",
		    cfg->user, strerror(errno));
		return -1;
	}
	if (getuid() != uid || geteuid() != uid || getgid() != gid ||
	    getegid() != gid || setuid(0) != -1) {
		snprintf(err, errlen, "switching to user %s did not stick; "
		    "not serving", cfg->user);
		return -1;
	}
	log_info("serve: running as %s (uid %ld, gid %ld)", cfg->user,
	    (long)uid, (long)gid);
	return 0;
}
