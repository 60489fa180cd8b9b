"""Memory the server gives back: glibc's allocator, capped to a few arenas and trimmed after each request.

A long upload decoded by FFmpeg (`esc50_hf.model.audio_io`) allocates hundreds of MB in many small pieces, in
the arena of the worker thread that runs the request. glibc's malloc keeps what is freed in the arena for
reuse rather than returning it to the system, and gives each new thread its own arena (up to 8 per core), so
a server whose requests run on ever-changing worker threads kept growing: 3 bursts of 8 concurrent 10-minute
M4A uploads took it from 0.95 GB to 1.86 GB on a 2-core machine. Trimming alone after each request left
1.22 GB after 10 bursts, still growing with each (new threads get new arenas, each fragmented its own way);
capped to `MALLOC_ARENAS` arenas and trimmed, the server is back at 1.03 GB after 10 bursts, flat from the
first (FFmpeg's libraries, loaded at the first upload, are most of the difference; `bench/LOAD.md`, long
uploads). Elsewhere than glibc (macOS, musl) both calls do nothing.
"""

import ctypes
import functools

MALLOC_ARENAS = 2  # arenas all threads share; more only spread freed memory over more places that keep it
_M_ARENA_MAX = -8  # mallopt's parameter number in glibc's malloc.h


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    libc = ctypes.CDLL(None)  # the C library this process runs on
    return libc if hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt") else None


def cap_malloc_arenas(arenas: int = MALLOC_ARENAS) -> bool:
    """Lets glibc's malloc create no more than `arenas` arenas from now on (`MALLOC_ARENA_MAX`, set at run time).

    Call it once, early: before the server's worker threads start (arenas already made are kept).

    Args:
        arenas (`int`, *optional*, defaults to `MALLOC_ARENAS`): Most arenas.

    Returns:
        `bool`: Whether the cap was set (`False` on a C library other than glibc).
    """
    libc = _glibc()
    return bool(libc and libc.mallopt(_M_ARENA_MAX, arenas))


def return_freed_memory() -> bool:
    """Returns the memory malloc holds free to the system (`malloc_trim(0)`); a few ms after a 10-minute upload,
    a tenth of a millisecond when there is nothing to return.

    Returns:
        `bool`: Whether memory was returned (`False` when none was, or not on glibc).
    """
    libc = _glibc()
    return bool(libc and libc.malloc_trim(0))


__all__ = ["MALLOC_ARENAS", "cap_malloc_arenas", "return_freed_memory"]
