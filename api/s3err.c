/* s3err.c: S3 error codes, messages and HTTP statuses, in one table. */
#include "internal.h"

#include <errno.h>
#include <string.h>

struct s3_err_info {
	const char *code;
	int status;
	const char *message;
};

static const struct s3_err_info s3_errs[S3E_END - S3E_BASE] = {
	[S3E_ACCESS_DENIED - S3E_BASE] = { "AccessDenied", 403, "Access Denied" },
	[S3E_EXPIRED - S3E_BASE] = { "AccessDenied", 403, "Request has expired" },
	[S3E_NOT_YET_VALID - S3E_BASE] = { "AccessDenied", 403, "Request is not valid yet" },
	[S3E_UNSIGNED_HEADERS - S3E_BASE] = { "AccessDenied", 403,
		"There were headers present in the request which were not signed" },
	[S3E_MISSING_DATE - S3E_BASE] = { "AccessDenied", 403,
		"AWS authentication requires a valid Date or x-amz-date header" },
	[S3E_HEADER_MALFORMED - S3E_BASE] = { "AuthorizationHeaderMalformed", 400,
		"The authorization header is malformed" },
	[S3E_QUERY_MALFORMED - S3E_BASE] = { "AuthorizationQueryParametersError", 400,
		"Error parsing the X-Amz-Credential, X-Amz-Date, X-Amz-Expires, X-Amz-SignedHeaders or X-Amz-Signature parameters" },
	[S3E_INVALID_ACCESS_KEY - S3E_BASE] = { "InvalidAccessKeyId", 403,
		"The AWS access key Id you provided does not exist in our records." },
	[S3E_SIGNATURE - S3E_BASE] = { "SignatureDoesNotMatch", 403,
		"The request signature we calculated does not match the signature you provided. Check your key and signing method." },
	[S3E_TIME_SKEWED - S3E_BASE] = { "RequestTimeTooSkewed", 403,
		"The difference between the request time and the current time is too large." },
	[S3E_UNSUPPORTED_ALG - S3E_BASE] = { "InvalidArgument", 400,
		"The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256." },
	[S3E_MISSING_CONTENT_SHA256 - S3E_BASE] = { "InvalidRequest", 400,
		"Missing required header for this request: x-amz-content-sha256" },
	[S3E_BAD_CONTENT_SHA256 - S3E_BASE] = { "InvalidArgument", 400,
		"x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-*, or a valid sha256 value." },
	[S3E_CONTENT_SHA256_MISMATCH - S3E_BASE] = { "XAmzContentSHA256Mismatch", 400,
		"The provided 'x-amz-content-sha256' header does not match what was computed." },
	[S3E_BAD_DIGEST - S3E_BASE] = { "BadDigest", 400,
		"The digest you specified did not match what we received." },
	[S3E_INVALID_DIGEST - S3E_BASE] = { "InvalidDigest", 400,
		"The digest you specified is not valid." },
	[S3E_INCOMPLETE_BODY - S3E_BASE] = { "IncompleteBody", 400,
		"You did not provide the number of bytes specified by the Content-Length HTTP header." },
	[S3E_CHUNK_MALFORMED - S3E_BASE] = { "InvalidRequest", 400,
		"Malformed aws-chunked body" },
	[S3E_CHUNK_SIGNATURE - S3E_BASE] = { "SignatureDoesNotMatch", 403,
		"The chunk signature we calculated does not match the signature you provided." },
	[S3E_MALFORMED_XML - S3E_BASE] = { "MalformedXML", 400,
		"The XML you provided was not well-formed or did not validate against our published schema." },
	[S3E_INVALID_PART_ORDER - S3E_BASE] = { "InvalidPartOrder", 400,
		"The list of parts was not in ascending order. The parts list must be specified in order by part number." },
	[S3E_INVALID_PART - S3E_BASE] = { "InvalidPart", 400,
		"One or more of the specified parts could not be found." },
	[S3E_TOO_LARGE - S3E_BASE] = { "MaxMessageLengthExceeded", 400,
		"Your request was too big." },
	[S3E_INVALID_LOCATION - S3E_BASE] = { "InvalidLocationConstraint", 400,
		"The specified location-constraint is not valid." },
	[S3E_MISSING_LENGTH - S3E_BASE] = { "MissingContentLength", 411,
		"You must provide the Content-Length HTTP header." },
	[S3E_BAD_TRAILER - S3E_BASE] = { "InvalidRequest", 400,
		"The value specified in the x-amz-trailer header is not supported" },
	[S3E_INVALID_TAG - S3E_BASE] = { "InvalidTag", 400,
		"The tag set is not valid: at most 10 tags, unique keys of 1 to 128 and values of up to 256 Unicode characters." },
	[S3E_LC_LONG_ID - S3E_BASE] = { "InvalidArgument", 400,
		"ID length should not exceed allowed limit of 255" },
	[S3E_LC_DUP_ID - S3E_BASE] = { "InvalidArgument", 400,
		"Rule ID must be unique. Found same ID for more than one rule" },
	[S3E_LC_DATE - S3E_BASE] = { "InvalidArgument", 400,
		"'Date' must be at midnight GMT" },
};

static const struct s3_err_info *s3_err_lookup(int err)
{
	if (err >= S3E_BASE && err < S3E_END && s3_errs[err - S3E_BASE].code)
		return &s3_errs[err - S3E_BASE];
	return NULL;
}

const char *s3_err_code(int err)
{
	const struct s3_err_info *i = s3_err_lookup(err);

	if (i)
		return i->code;
	if (err == -ENOMEM || err == -EAGAIN)
		return "SlowDown";
	return "InternalError";
}

const char *s3_err_message(int err)
{
	const struct s3_err_info *i = s3_err_lookup(err);

	if (i)
		return i->message;
	if (err == -ENOMEM || err == -EAGAIN)
		return "Please reduce your request rate.";
	return "We encountered an internal error. Please try again.";
}

int s3_err_http_status(int err)
{
	const struct s3_err_info *i = s3_err_lookup(err);

	if (err == 0)
		return 200;
	if (i)
		return i->status;
	if (err == -ENOMEM || err == -EAGAIN)
		return 503;
	return 500;
}

const char *s3_strerror(int err)
{
	if (s3_err_lookup(err))
		return s3_err_message(err);
	return strerror(-err);
}
