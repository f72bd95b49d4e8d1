#include "vmm/input_pacer.h"

#include <algorithm>

namespace kairos::vmm {

uint64_t InputPacer::line_start(uint64_t now_ns, uint64_t character_ns) const
{
	const uint64_t window = burst_ * character_ns;
	const uint64_t earliest = now_ns > window ? now_ns - window : 0;
	return std::max(next_start_ns_, earliest);
}

size_t InputPacer::available(uint64_t now_ns, uint64_t character_ns) const
{
	if (character_ns == 0)
		return burst_;
	const uint64_t start = line_start(now_ns, character_ns);
	if (start >= now_ns)
		return 0;
	return std::min<uint64_t>(burst_, (now_ns - start) / character_ns);
}

uint64_t InputPacer::ready_at(size_t count, uint64_t now_ns, uint64_t character_ns) const
{
	count = std::min(count, burst_);
	return std::max(now_ns, line_start(now_ns, character_ns) + count * character_ns);
}

void InputPacer::take(size_t count, uint64_t now_ns, uint64_t character_ns)
{
	next_start_ns_ = line_start(now_ns, character_ns) + count * character_ns;
}

}  // namespace kairos::vmm
