/*
 * weft/version.h - version numbers and the export macro every public header
 * uses. The library is built with hidden visibility; WEFT_EXTERN marks the
 * stable C API.
 */
#ifndef WEFT_VERSION_H
#define WEFT_VERSION_H

#define WEFT_VERSION_MAJOR 0
#define WEFT_VERSION_MINOR 1
#define WEFT_VERSION_PATCH 0
#define WEFT_VERSION_STRING "0.1.0"

#if defined(WEFT_BUILDING) && defined(__GNUC__)
#define WEFT_EXTERN __attribute__((visibility("default")))
#else
#define WEFT_EXTERN
#endif

#endif /* WEFT_VERSION_H */
