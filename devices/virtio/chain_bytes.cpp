#include "devices/virtio/chain_bytes.h"

#include <algorithm>
#include <cstring>

#include "base/error.h"

namespace kairos::devices::virtio {

ChainBytes::ChainBytes(const GuestRam &ram, const Chain &chain, Part part) : ram_(ram)
{
	// SplitQueue::pop guarantees readable buffers first, then writable.
	const auto first_writable = std::find_if(chain.buffers.begin(), chain.buffers.end(),
						 [](const Buffer &b) { return b.device_writable; });
	const size_t split = static_cast<size_t>(first_writable - chain.buffers.begin());
	const std::span<const Buffer> all(chain.buffers);
	buffers_ = part == Part::Readable ? all.first(split) : all.subspan(split);
	size_ = part == Part::Readable ? chain.readable_bytes : chain.writable_bytes;
}

template <typename Visit>
Status ChainBytes::for_each_piece(uint64_t offset, uint64_t length, Visit visit) const
{
	if (offset > size_ || length > size_ - offset)
		return make_error("bytes {}+{} are past the chain's {} bytes", offset, length, size_);
	for (const Buffer &buffer : buffers_) {
		if (length == 0)
			break;
		if (offset >= buffer.length) {
			offset -= buffer.length;
			continue;
		}
		const uint64_t piece = std::min<uint64_t>(buffer.length - offset, length);
		auto view = ram_.slice(buffer.gpa + offset, piece);
		if (!view)
			return view.error();
		visit(*view);
		offset = 0;
		length -= piece;
	}
	return {};
}

Status ChainBytes::copy_out(uint64_t offset, std::span<uint8_t> out) const
{
	uint8_t *to = out.data();
	return for_each_piece(offset, out.size(), [&to](std::span<uint8_t> piece) {
		std::memcpy(to, piece.data(), piece.size());
		to += piece.size();
	});
}

Status ChainBytes::copy_in(uint64_t offset, std::span<const uint8_t> in) const
{
	const uint8_t *from = in.data();
	return for_each_piece(offset, in.size(), [&from](std::span<uint8_t> piece) {
		std::memcpy(piece.data(), from, piece.size());
		from += piece.size();
	});
}

Status ChainBytes::iovecs(uint64_t offset, uint64_t length, std::vector<iovec> &out) const
{
	return for_each_piece(offset, length, [&out](std::span<uint8_t> piece) {
		out.push_back({piece.data(), piece.size()});
	});
}

}  // namespace kairos::devices::virtio
