// FUZZ_CHECK: the fuzz targets' assertion. A broken invariant traps, which
// libFuzzer and the smoke driver (smoke_main.cpp) both report as a crash
// with the input that caused it; unlike assert, NDEBUG cannot remove it.
#pragma once

#define FUZZ_CHECK(condition)             \
	do {                              \
		if (!(condition))         \
			__builtin_trap(); \
	} while (0)
