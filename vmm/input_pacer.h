// InputPacer: host input to the UART at most at the speed of the serial line
// the guest programmed (issue 12, #10). A line carries one character per
// character time, so however fast stdin fills, the guest takes at most
// baud / 10 characters a second, two exits each, with one interrupt per
// trigger level of them. A line that was idle may have filled the FIFO
// meanwhile, so up to `burst` characters (one FIFO-full) are ready at once:
// typed or pasted input starts without delay. Pure logic on times the caller
// passes in (CLOCK_MONOTONIC ns), for unit tests.
#pragma once

#include <cstddef>
#include <cstdint>

namespace kairos::vmm {

class InputPacer {
public:
	explicit InputPacer(size_t burst) : burst_(burst) {}

	// Characters the line could have carried by now_ns, at most burst.
	size_t available(uint64_t now_ns, uint64_t character_ns) const;
	// When count (at most burst) characters are available: now_ns if they
	// already are.
	uint64_t ready_at(size_t count, uint64_t now_ns, uint64_t character_ns) const;
	// count characters (at most available()) went to the UART at now_ns.
	void take(size_t count, uint64_t now_ns, uint64_t character_ns);

private:
	// Where the line's next character starts: never further back than
	// burst characters before now.
	uint64_t line_start(uint64_t now_ns, uint64_t character_ns) const;

	size_t burst_;
	uint64_t next_start_ns_ = 0;  // the end of the last character taken
};

}  // namespace kairos::vmm
