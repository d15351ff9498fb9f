/*
 * tap.c: the TAP helper for the C unit tests.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tap.h"

static unsigned long	tap_n, tap_failed, tap_planned;
static int		tap_lazy;
static char		tap_dir[256];

static void
tap_finish(void)
{
	if (tap_lazy)
		printf("1..%lu\n", tap_n);
	else if (tap_planned != tap_n)
		printf("# planned %lu tests but ran %lu\n", tap_planned, tap_n);
	fflush(stdout);
	test_tmpdir_cleanup();
}

void
plan(unsigned long n)
{
	tap_planned = n;
	printf("1..%lu\n", n);
	atexit(tap_finish);
}

void
plan_lazy(void)
{
	tap_lazy = 1;
	atexit(tap_finish);
}

static int
vok(int cond, const char *fmt, va_list ap)
{
	printf("%sok %lu - ", cond ? "" : "not ", ++tap_n);
	vprintf(fmt, ap);
	printf("\n");
	fflush(stdout);
	if (!cond)
		tap_failed++;
	return cond;
}

int
ok(int cond, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vok(cond, fmt, ap);
	va_end(ap);
	return cond;
}

int
is_int(long long want, long long got, const char *fmt, ...)
{
	va_list	ap;
	int	c = want == got;

	va_start(ap, fmt);
	vok(c, fmt, ap);
	va_end(ap);
	if (!c)
		printf("#   wanted: %lld\n#      got: %lld\n", want, got);
	return c;
}

int
is_string(const char *want, const char *got, const char *fmt, ...)
{
	va_list	ap;
	int	c;

	c = (want == NULL && got == NULL) ||
	    (want != NULL && got != NULL && strcmp(want, got) == 0);
	va_start(ap, fmt);
	vok(c, fmt, ap);
	va_end(ap);
	if (!c)
		printf("#   wanted: %s\n#      got: %s\n",
		    want ? want : "(null)", got ? got : "(null)");
	return c;
}

void
diag(const char *fmt, ...)
{
	va_list	ap;

	printf("# ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
}

void
bail(const char *fmt, ...)
{
	va_list	ap;

	printf("Bail out! ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	exit(255);
}

const char *
test_tmpdir(void)
{
	const char	*base = getenv("TMPDIR");

	if (tap_dir[0] != '\0')
		return tap_dir;
	snprintf(tap_dir, sizeof(tap_dir), "%s/qrtest.XXXXXX",
	    base != NULL ? base : "/tmp");
	if (mkdtemp(tap_dir) == NULL)
		bail("mkdtemp failed");
	return tap_dir;
}

void
test_tmpdir_cleanup(void)
{
	char	cmd[300];

	if (tap_dir[0] == '\0')
		return;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tap_dir);
	if (system(cmd) != 0)
		diag("could not remove %s", tap_dir);
	tap_dir[0] = '\0';
}

int
memmem_str(const void *h, size_t n, const char *needle)
{
	return memmem(h, n, needle, strlen(needle)) != NULL;
}
