// Intel's ISA-L (Debian: libisal-dev): crc32_gzip_refl, the CRC-32 of zlib, gzip and PNG computed by
// folding with carry-less multiplication (PCLMULQDQ / VPCLMULQDQ on x86-64, PMULL on ARMv8),
// selected at run time for the CPU. It returns exactly zlib's crc32() values, several times faster:
// the .tmf reader checks the data section (every weight byte) with it. Linux only (Package.swift);
// other platforms use zlib's crc32.
#include <isa-l/crc.h>
