#include <catch2/catch.hpp>

#include "pvclock/event_channels.h"

using namespace kairos::pvclock;

namespace {

struct Fixture {
	alignas(4096) std::array<uint8_t, 4096> bytes{};
	SharedInfo page{bytes, 1};
	int injections = 0;
	EventChannels channels{[this] { ++injections; }};
	kairos_shared_info &info() { return *page.raw(); }

	// What the guest's upcall handler does: clear upcall_pending, then take
	// the selector and pending words; returns the ports it found.
	std::vector<uint32_t> guest_dispatch()
	{
		std::vector<uint32_t> ports;
		info().upcall_pending = 0;
		uint64_t selector = std::exchange(info().pending_sel, 0);
		for (uint32_t word = 0; word < KAIROS_EVENT_WORDS; ++word) {
			if (!(selector & (1ULL << word)))
				continue;
			uint64_t bits = info().pending[word] & ~info().mask[word];
			info().pending[word] &= ~bits;
			for (uint32_t bit = 0; bit < 64; ++bit)
				if (bits & (1ULL << bit))
					ports.push_back(word * 64 + bit);
		}
		return ports;
	}
};

}  // namespace

TEST_CASE("raising an unmasked port sets pending, selector and upcall and injects once", "[events]")
{
	Fixture f;
	f.channels.attach(&f.page);
	f.channels.raise(70);
	CHECK(f.injections == 1);
	CHECK(f.info().pending[1] == (1ULL << 6));
	CHECK(f.info().pending_sel == 0b10);
	CHECK(f.info().upcall_pending == 1);
	// While the upcall is pending, more events do not inject again.
	f.channels.raise(3);
	CHECK(f.injections == 1);
	CHECK(f.guest_dispatch() == std::vector<uint32_t>{3, 70});
	CHECK(f.channels.stats(70).raised == 1);
	CHECK(f.channels.stats(70).injected == 1);
}

TEST_CASE("a port already pending is not raised twice", "[events]")
{
	Fixture f;
	f.channels.attach(&f.page);
	f.channels.raise(5);
	f.info().upcall_pending = 0;  // guest cleared upcall but not the port
	f.channels.raise(5);
	CHECK(f.injections == 1);
}

TEST_CASE("masked ports stay pending without an upcall until the guest unmasks", "[events]")
{
	Fixture f;
	f.channels.attach(&f.page);
	f.info().mask[0] = 1ULL << 3;
	f.channels.raise(3);
	CHECK(f.injections == 0);
	CHECK(f.info().pending[0] == (1ULL << 3));
	CHECK(f.info().pending_sel == 0);
	CHECK(f.info().upcall_pending == 0);
	// The guest unmasks and re-checks pending itself (DESIGN.md 3).
	f.info().mask[0] = 0;
	REQUIRE((f.info().pending[0] & (1ULL << 3)) != 0);
	f.info().pending_sel |= 1;
	f.info().upcall_pending = 1;
	CHECK(f.guest_dispatch() == std::vector<uint32_t>{3});
}

TEST_CASE("upcall_mask holds the interrupt but not the bits", "[events]")
{
	Fixture f;
	f.channels.attach(&f.page);
	f.info().upcall_mask = 1;
	f.channels.raise(9);
	CHECK(f.injections == 0);
	CHECK(f.info().upcall_pending == 1);
	CHECK(f.info().pending_sel == 1);
	f.info().upcall_mask = 0;
	CHECK(f.guest_dispatch() == std::vector<uint32_t>{9});
}

TEST_CASE("events raised before registration are held and delivered at registration", "[events]")
{
	Fixture f;
	f.channels.raise(KAIROS_EVENT_VIRTUAL_TIMER);
	f.channels.raise(KAIROS_EVENT_DEBUG);
	CHECK(f.injections == 0);
	CHECK(f.channels.stats(KAIROS_EVENT_DEBUG).held == 1);
	f.channels.attach(&f.page);
	CHECK(f.injections == 1);
	CHECK(f.guest_dispatch() == std::vector<uint32_t>{KAIROS_EVENT_VIRTUAL_TIMER, KAIROS_EVENT_DEBUG});
	// Detached again (module unloaded): held once more.
	f.channels.detach();
	f.channels.raise(KAIROS_EVENT_DEBUG);
	CHECK(f.injections == 1);
	CHECK(f.channels.stats(KAIROS_EVENT_DEBUG).held == 2);
}

TEST_CASE("out-of-range ports are counted and ignored", "[events]")
{
	Fixture f;
	f.channels.attach(&f.page);
	f.channels.raise(KAIROS_EVENT_PORTS);
	f.channels.raise(0xffffffffu);
	CHECK(f.injections == 0);
	CHECK(f.channels.invalid_ports() == 2);
}
