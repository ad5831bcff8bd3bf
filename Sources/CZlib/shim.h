// zlib (Debian: zlib1g-dev; part of the SDK on Apple platforms): raw deflate and inflate for the
// members of .npz archives, and CRC-32.
#include <zlib.h>
