/* api/http_util.c: small pure helpers of the HTTP layer (dates, URL
 * decoding, token checks). No allocation, no I/O. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "internal.h"
#include "common.h"

int http_date_format(time_t t, char out[HTTP_DATE_LEN + 1])
{
	static const char days[7][4] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
	static const char months[12][4] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
					    "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	struct tm tm;

	/* gmtime_r, not strftime: %a/%b follow the locale, the wire must not. */
	if (!gmtime_r(&t, &tm) || tm.tm_year + 1900 < 0 || tm.tm_year + 1900 > 9999)
		return -EOVERFLOW;
	snprintf(out, HTTP_DATE_LEN + 1, "%s, %02d %s %04d %02d:%02d:%02d GMT",
		 days[tm.tm_wday], tm.tm_mday, months[tm.tm_mon],
		 tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
	return 0;
}

int iso8601_parse(const char *s, time_t *out)
{
	struct tm tm = { 0 };
	const char *end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);

	if (end && *end == '.')		/* fractions: the date is in seconds */
		end += 1 + strspn(end + 1, "0123456789");
	if (!end || (strcmp(end, "Z") && strcmp(end, "+00:00")))
		return -EINVAL;
	*out = timegm(&tm);
	return 0;
}

int http_url_decode(const char *in, size_t len, char *out, size_t *out_len,
		    bool plus_is_space)
{
	size_t i, o = 0;

	for (i = 0; i < len; i++) {
		char c = in[i];

		if (c == '%') {
			int hi, lo;

			if (len - i < 3)
				return -EINVAL;
			hi = strata_hexval(in[i + 1]);
			lo = strata_hexval(in[i + 2]);
			if (hi < 0 || lo < 0)
				return -EINVAL;
			c = (char)(hi << 4 | lo);
			if (c == '\0')
				return -EINVAL;
			i += 2;
		} else if (c == '+' && plus_is_space) {
			c = ' ';
		} else if (c == '\0') {
			return -EINVAL;
		}
		out[o++] = c;		/* o <= i: decoding in place is safe */
	}
	*out_len = o;
	return 0;
}

bool http_is_token(const char *s, size_t len)
{
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
		    (c >= 'A' && c <= 'Z'))
			continue;
		if (!strchr("!#$%&'*+-.^_`|~", c) || c == '\0')
			return false;
	}
	return true;
}

bool http_is_field_value(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (s[i] == '\r' || s[i] == '\n' || s[i] == '\0')
			return false;
	return true;
}

const char *http_reason(int status)
{
	if (status < 100 || status > 599)
		return "Unknown";
	/* http_parser's table, which says "<unknown>" for codes it lacks. */
	const char *s = http_status_str((enum http_status)status);

	return s[0] == '<' ? "Unknown" : s;
}

bool http_name_eq(const char *a, size_t alen, const char *b)
{
	return strlen(b) == alen && strncasecmp(a, b, alen) == 0;
}
