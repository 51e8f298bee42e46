/* common/common.h: small helpers every Strata folder may use.
 *
 * Logging, time and a few macros; nothing here knows about rings, nodes or
 * HTTP. Kept deliberately tiny: a helper belongs here only once two folders
 * need it.
 */
#ifndef STRATA_COMMON_H
#define STRATA_COMMON_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <syslog.h>

#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))
#define likely(x)	__builtin_expect(!!(x), 1)
#define unlikely(x)	__builtin_expect(!!(x), 0)
#define STRATA_EXPORT	__attribute__((visibility("default")))

/* Frees the pointer when the variable leaves scope (nbdkit's CLEANUP_FREE). */
void strata_cleanup_free(void *ptr);
#define CLEANUP_FREE	__attribute__((cleanup(strata_cleanup_free)))

/* Logging on syslog levels to stderr: "<ident> <level> <func>:<line>: msg".
 * LOG_DEBUG lines are dropped unless strata_log_verbose is set. */
extern bool strata_log_verbose;
void strata_log_init(const char *ident);
void strata_log_write(int prio, const char *func, int line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
#define log_err(...)	strata_log_write(LOG_ERR, __func__, __LINE__, __VA_ARGS__)
#define log_warn(...)	strata_log_write(LOG_WARNING, __func__, __LINE__, __VA_ARGS__)
#define log_info(...)	strata_log_write(LOG_INFO, __func__, __LINE__, __VA_ARGS__)
#define log_debug(...)							\
	do {								\
		if (unlikely(strata_log_verbose))			\
			strata_log_write(LOG_DEBUG, __func__, __LINE__,	\
					 __VA_ARGS__);			\
	} while (0)

/* Value of one hex digit (either case), or -1. */
static inline int strata_hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Parses a decimal count with an optional binary suffix k/K, m/M, g/G
 * ("64k" = 65,536), as daemons' size flags take them: 0 or -EINVAL (empty,
 * signed, trailing junk) or -ERANGE (past 2^64). */
int strata_parse_size(const char *s, uint64_t *out);

/* Byte strings in memcmp order, a prefix before what extends it: <0, 0, >0. */
int strata_bytes_cmp(const void *a, size_t alen, const void *b, size_t blen);
/* Whether k (klen bytes) starts with p (plen bytes; an empty p always). */
bool strata_has_prefix(const void *k, size_t klen, const void *p, size_t plen);

/* Monotonic and wall clocks. */
uint64_t strata_now_ns(void);		/* CLOCK_MONOTONIC */
uint64_t strata_wall_ns(void);		/* CLOCK_REALTIME */

/* Reads a whole file of at most max_len bytes into a malloc'd buffer.
 * Returns 0 or -errno (-EFBIG when larger than max_len). */
int strata_read_file(const char *path, size_t max_len, uint8_t **out, size_t *out_len);

/* Writes buf to path atomically: temp file, fsync, rename, fsync of the
 * directory, so readers see the old file or the new one, never a mix. */
int strata_write_file_atomic(const char *path, const void *buf, size_t len);

/* Writes "PORT\n" to path atomically (daemons started with --port 0 tell
 * their tests and tools where they listen); logs and returns -errno on
 * failure. */
int strata_write_port_file(const char *path, unsigned port);

#endif
