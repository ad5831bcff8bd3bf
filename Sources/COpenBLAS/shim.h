// OpenBLAS's CBLAS and the LAPACKE C interface (Debian: libopenblas-dev, liblapacke-dev).
//
// pkg-config `openblas` puts OpenBLAS's own include directory first (on Debian
// /usr/include/<triple>/openblas-pthread/); without pkg-config, Debian's alternatives link
// /usr/include/<triple>/cblas.h to it, and that directory is on the compiler's default path.
// LAPACKE's complex types become plain structs: Swift never calls the complex routines.
#define LAPACK_COMPLEX_STRUCTURE
#include <cblas.h>
#include <lapacke.h>
