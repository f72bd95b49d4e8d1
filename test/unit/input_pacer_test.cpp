#include <catch2/catch.hpp>

#include <cstdint>
#include <random>

#include "vmm/input_pacer.h"

using kairos::vmm::InputPacer;

namespace {

constexpr uint64_t kCharacter = 1'041'666;  // 9600 baud 8N1
constexpr uint64_t kStart = 1'000'000'000'000;

}  // namespace

TEST_CASE("input pacer: an idle line has a FIFO-full ready, then one character per character time", "[console]")
{
	InputPacer pacer(16);
	CHECK(pacer.available(kStart, kCharacter) == 16);
	CHECK(pacer.ready_at(8, kStart, kCharacter) == kStart);
	pacer.take(16, kStart, kCharacter);
	CHECK(pacer.available(kStart, kCharacter) == 0);
	CHECK(pacer.available(kStart + kCharacter - 1, kCharacter) == 0);
	CHECK(pacer.available(kStart + kCharacter, kCharacter) == 1);
	CHECK(pacer.ready_at(8, kStart, kCharacter) == kStart + 8 * kCharacter);
	CHECK(pacer.available(kStart + 8 * kCharacter, kCharacter) == 8);
	// Never more than the burst, however long the line was idle.
	CHECK(pacer.available(kStart + 1000 * kCharacter, kCharacter) == 16);
	// Taking part of what is available leaves the rest.
	pacer.take(3, kStart + 8 * kCharacter, kCharacter);
	CHECK(pacer.available(kStart + 8 * kCharacter, kCharacter) == 5);
	// A burst larger than the pacer's is cut to it.
	CHECK(pacer.ready_at(100, kStart + 8 * kCharacter, kCharacter) == kStart + 19 * kCharacter);
}

TEST_CASE("input pacer: a flood taken at random moments gets the line rate, no more", "[console]")
{
	// `yes` on stdin (issue 12, #10): the host takes whatever the line
	// allows each time it wakes, for 10 s of line time.
	InputPacer pacer(16);
	std::mt19937_64 random(12);
	std::uniform_int_distribution<uint64_t> step(1, 5 * kCharacter);
	uint64_t now = kStart;
	uint64_t taken = 0;
	const uint64_t end = kStart + 10'000'000'000;
	while (now < end) {
		size_t ready = pacer.available(now, kCharacter);
		pacer.take(ready, now, kCharacter);
		taken += ready;
		now += step(random);
	}
	const uint64_t line = 10'000'000'000 / kCharacter;  // 9600 characters
	CHECK(taken <= line + 16);
	CHECK(taken + 16 + 5 >= line);  // and it keeps up with the line
}

TEST_CASE("input pacer: the guest changing its baud rate applies from then on", "[console]")
{
	InputPacer pacer(16);
	pacer.take(16, kStart, kCharacter);
	const uint64_t fast = 86'805;  // 115200 baud
	CHECK(pacer.available(kStart + 16 * fast, fast) == 16);
	CHECK(pacer.ready_at(8, kStart, fast) == kStart + 8 * fast);
}
