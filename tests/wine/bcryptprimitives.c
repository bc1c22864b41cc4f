/* Stand-in for bcryptprimitives.dll, for the Wine test lane only.
 *
 * Rust's std (1.78 and later) takes its random numbers from ProcessPrng in
 * bcryptprimitives.dll. Wine 8's builtin DLL lacks that export, so every
 * Rust .exe fails to start under it. Placed beside the .exe (scripts/test
 * builds it into target/x86_64-pc-windows-gnu/debug/), this DLL provides
 * ProcessPrng through advapi32's SystemFunction036 (RtlGenRandom), which
 * Wine has. Real Windows never sees it. */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    while (len > 0) {
        ULONG chunk = len > 0x40000000 ? 0x40000000 : (ULONG)len;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}
