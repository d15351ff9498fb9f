/*
 * tap.h: a small TAP producer after c-tap-harness's basic.h.  Each test
 * program prints "1..N" and one "ok N - what" line per check; automake's
 * tap-driver.sh counts them.
 */
#ifndef QR_TAP_H
#define QR_TAP_H

#include <stddef.h>

void	plan(unsigned long);
void	plan_lazy(void);
int	ok(int, const char *, ...) __attribute__((format(printf, 2, 3)));
int	is_int(long long, long long, const char *, ...)
	    __attribute__((format(printf, 3, 4)));
int	is_string(const char *, const char *, const char *, ...)
	    __attribute__((format(printf, 3, 4)));
void	diag(const char *, ...) __attribute__((format(printf, 1, 2)));
void	bail(const char *, ...) __attribute__((format(printf, 1, 2), noreturn));
/* A fresh temporary directory (removed by test_tmpdir_cleanup). */
const char *test_tmpdir(void);
void	test_tmpdir_cleanup(void);
/* Does haystack (n bytes) contain needle? */
int	memmem_str(const void *, size_t, const char *);

#endif
