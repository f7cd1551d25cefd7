/*
 * Test tooling only, never shipped: Debian's Wine 8 has no
 * bcryptprimitives.dll, and the Go runtime (1.22+) asks it for ProcessPrng
 * before main runs. Windows 10+ has the DLL; this shim gives Wine the one
 * export Go needs by forwarding to RtlGenRandom (advapi32!SystemFunction036),
 * which Wine does implement.
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buf, ULONG len);

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
	while (len > 0) {
		ULONG n = len > 0x10000000 ? 0x10000000 : (ULONG)len;
		if (!SystemFunction036(data, n))
			return FALSE;
		data += n;
		len -= n;
	}
	return TRUE;
}
