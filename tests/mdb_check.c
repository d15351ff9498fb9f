/*
 * mdb_check.c: what `mdb_stat -r` and a full read tell about an LMDB env
 * after processes were killed, without lmdb-utils.
 *
 *   tests/mdb_check DIR...   for each env: every named database walked to
 *                            the end, the reader table listed; prints
 *                            "DIR: D dbs, E entries, R readers, S stale"
 *                            (stale: the reader's pid is dead); exit 1 if
 *                            an env cannot be opened or read.
 *   tests/mdb_check          TAP self-test: a reader killed with SIGKILL
 *                            shows as stale, mdb_reader_check clears it.
 *
 * A test helper: like test_store.c it talks to LMDB directly, which the
 * program itself leaves to store/.
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <lmdb.h>

#include "tap.h"

struct readers {
	int	n;
	int	stale;
};

static int
reader_cb(const char *msg, void *ctx)
{
	struct readers	*r = ctx;
	long		 pid;

	if (sscanf(msg, " %ld", &pid) != 1)
		return 0;	/* the header, or "(no active readers)" */
	r->n++;
	if (kill((pid_t)pid, 0) == -1 && errno == ESRCH)
		r->stale++;
	return 0;
}

static int
env_open(const char *dir, MDB_env **env)
{
	int	rc;

	if ((rc = mdb_env_create(env)) != 0)
		return rc;
	mdb_env_set_maxdbs(*env, 64);
	mdb_env_set_maxreaders(*env, 1024);
	if ((rc = mdb_env_open(*env, dir, MDB_RDONLY | MDB_NOTLS, 0600)) != 0)
		mdb_env_close(*env);
	return rc;
}

/* Walk every named db to its end.  Returns 0 or an LMDB error. */
static int
walk(MDB_env *env, long *dbs, long *entries)
{
	MDB_txn		*t;
	MDB_cursor	*c, *c2;
	MDB_dbi		 main, d;
	MDB_val		 k, v;
	char		 name[512];
	int		 rc;

	if ((rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &t)) != 0)
		return rc;
	if ((rc = mdb_dbi_open(t, NULL, 0, &main)) != 0 ||
	    (rc = mdb_cursor_open(t, main, &c)) != 0)
		goto out;
	while ((rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) == 0) {
		(*entries)++;
		if (k.mv_size == 0 || k.mv_size >= sizeof(name))
			continue;
		memcpy(name, k.mv_data, k.mv_size);
		name[k.mv_size] = '\0';
		if (memchr(name, '\0', k.mv_size) != NULL ||
		    mdb_dbi_open(t, name, 0, &d) != 0)
			continue;	/* a plain key, not a db */
		(*dbs)++;
		if ((rc = mdb_cursor_open(t, d, &c2)) != 0)
			break;
		while ((rc = mdb_cursor_get(c2, &k, &v, MDB_NEXT)) == 0)
			(*entries)++;
		mdb_cursor_close(c2);
		if (rc != MDB_NOTFOUND)
			break;
	}
	mdb_cursor_close(c);
	if (rc == MDB_NOTFOUND)
		rc = 0;
out:
	mdb_txn_abort(t);
	return rc;
}

static int
check(const char *dir)
{
	MDB_env		*env;
	struct readers	 r = { 0, 0 };
	long		 dbs = 0, entries = 0;
	int		 rc;

	if ((rc = env_open(dir, &env)) != 0) {
		printf("%s: cannot open: %s\n", dir, mdb_strerror(rc));
		return 1;
	}
	mdb_reader_list(env, reader_cb, &r);
	if ((rc = walk(env, &dbs, &entries)) != 0) {
		printf("%s: cannot read: %s\n", dir, mdb_strerror(rc));
		mdb_env_close(env);
		return 1;
	}
	printf("%s: %ld dbs, %ld entries, %d readers, %d stale\n", dir, dbs,
	    entries, r.n, r.stale);
	mdb_env_close(env);
	return 0;
}

static void
selftest(void)
{
	MDB_env		*env;
	MDB_txn		*t;
	MDB_dbi		 d;
	MDB_val		 k = { 1, "k" }, v = { 1, "v" };
	struct readers	 r = { 0, 0 };
	const char	*dir = test_tmpdir();
	int		 p[2], dead = 0, st;
	pid_t		 pid;
	char		 c;

	plan(4);
	if (mdb_env_create(&env) != 0 || mdb_env_set_maxdbs(env, 4) != 0 ||
	    mdb_env_open(env, dir, MDB_NOTLS, 0600) != 0)
		bail("cannot create an env in %s", dir);
	mdb_txn_begin(env, NULL, 0, &t);
	mdb_dbi_open(t, "x", MDB_CREATE, &d);
	mdb_put(t, d, &k, &v, 0);
	mdb_txn_commit(t);
	mdb_env_close(env);
	if (pipe(p) != 0 || (pid = fork()) == -1)
		bail("fork");
	if (pid == 0) {
		if (env_open(dir, &env) != 0 ||
		    mdb_txn_begin(env, NULL, MDB_RDONLY, &t) != 0)
			_exit(1);
		if (write(p[1], "x", 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	if (read(p[0], &c, 1) != 1)
		bail("the reader did not start");
	/*
	 * Open while the reader lives: the first opener of an env nobody
	 * holds resets the reader table, so stale slots only ever exist
	 * next to live processes (as in a running pool).
	 */
	if (env_open(dir, &env) != 0)
		bail("reopen");
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	mdb_reader_list(env, reader_cb, &r);
	ok(r.n == 1 && r.stale == 1, "a killed reader is listed as stale "
	    "(%d readers, %d stale)", r.n, r.stale);
	mdb_reader_check(env, &dead);
	is_int(1, dead, "mdb_reader_check clears it");
	mdb_env_close(env);
	is_int(0, check(dir), "the env reads to the end");
	r.n = r.stale = 0;
	env_open(dir, &env);
	mdb_reader_list(env, reader_cb, &r);
	mdb_env_close(env);
	is_int(0, r.n, "no reader left");
	test_tmpdir_cleanup();
}

int
main(int argc, char **argv)
{
	int	i, rc = 0;

	if (argc == 1) {
		selftest();
		return 0;
	}
	for (i = 1; i < argc; i++)
		rc |= check(argv[i]);
	return rc;
}
