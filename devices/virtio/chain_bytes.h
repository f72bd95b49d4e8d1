// ChainBytes: a chain's device-readable or device-writable buffers seen as
// one run of bytes, whatever the driver's framing (virtio 1.2 section
// 2.6.4: a device must not assume where one descriptor ends). Devices copy
// headers out of it, write small answers into it, and turn ranges of it
// into iovecs for readv/writev.
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <span>
#include <vector>

#include "base/guest_ram.h"
#include "base/result.h"
#include "devices/virtio/virtqueue.h"

namespace kairos::devices::virtio {

class ChainBytes {
public:
	enum class Part { Readable, Writable };

	ChainBytes(const GuestRam &ram, const Chain &chain, Part part);

	uint64_t size() const { return size_; }
	// Copies bytes [offset, offset + out.size()) out of guest memory.
	Status copy_out(uint64_t offset, std::span<uint8_t> out) const;
	// Copies `in` into bytes [offset, offset + in.size()).
	Status copy_in(uint64_t offset, std::span<const uint8_t> in) const;
	// Appends host iovecs for bytes [offset, offset + length).
	Status iovecs(uint64_t offset, uint64_t length, std::vector<iovec> &out) const;

private:
	// Calls visit(host view) for each piece of [offset, offset + length).
	template <typename Visit>
	Status for_each_piece(uint64_t offset, uint64_t length, Visit visit) const;

	const GuestRam &ram_;
	std::span<const Buffer> buffers_;
	uint64_t size_ = 0;
};

}  // namespace kairos::devices::virtio
