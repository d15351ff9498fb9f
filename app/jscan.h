/*
 * jscan.h: integers out of one JSON object's top-level members, without
 * building a json-c tree (json-c's tokener cost ~100 instructions a byte:
 * parsing a chat answer's small "usage" object was 12 k instructions, a
 * twentieth of a whole relayed request).
 */
#ifndef QR_JSCAN_H
#define QR_JSCAN_H

#include <stddef.h>
#include <stdint.h>

/*
 * s points at a JSON object ('{' after optional white space) of at most
 * len bytes (it may be followed by anything: the scan stops at its closing
 * brace).  For each of the n names (n <= 31) that is a top-level member
 * (names compared byte for byte: an escaped name does not match; members
 * nested deeper are skipped; the last of duplicates wins), vals[i] gets
 * its value as json_object_get_int64 would give it (a number cut towards
 * zero and saturated, a string's leading integer, true 1, anything else 0)
 * and bit i of the result is set.  Returns the bit set, or -1 when s is
 * not a well-formed object within len (then vals is untouched).
 */
int	jscan_ints(const char *s, size_t len, const char *const *names,
	    int64_t *vals, size_t n);

#endif
