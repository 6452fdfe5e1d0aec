/*
 * Test infrastructure for the Windows lane (cmd/lifeboat wine_linux_test.go),
 * never shipped: Go 1.24+ Windows binaries take their random bytes from
 * ProcessPrng in bcryptprimitives.dll, which Debian's Wine 8 lacks, so they
 * do not start ("bcryptprimitives.dll not found"). This stand-in forwards to
 * RtlGenRandom (advapi32's SystemFunction036), which Wine has. Built with
 * Debian's mingw-w64 when the test runs.
 */
#include <windows.h>
#include <stdint.h>
BOOLEAN WINAPI SystemFunction036(PVOID buf, ULONG len);
__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T n) {
	while (n > 0) {
		ULONG k = n > 0x40000000 ? 0x40000000 : (ULONG)n;
		if (!SystemFunction036(data, k)) return FALSE;
		data += k; n -= k;
	}
	return TRUE;
}
