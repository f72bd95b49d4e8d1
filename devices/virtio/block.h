// Block: a virtio-blk device (virtio 1.2 section 5.2) on a raw image file,
// its requests served through io_uring on the device's own thread.
//
// Offers VERSION_1, EVENT_IDX, INDIRECT_DESC, BLK_F_FLUSH (a flush is a
// real fdatasync), BLK_F_SEG_MAX, BLK_F_BLK_SIZE and, for read-only
// drives, BLK_F_RO (writes then fail with VIRTIO_BLK_S_IOERR). GET_ID
// answers the drive's id. The image is locked with flock(2) (exclusive,
// shared when read-only) so two VMs cannot write it at once.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "base/guest_ram.h"
#include "base/unique_fd.h"
#include "devices/virtio/device.h"

namespace kairos::devices::virtio {

struct BlockOptions {
	std::string id;    // GET_ID's answer (at most 20 bytes, section 5.2.6)
	std::string path;  // a raw image; its size must be a multiple of 512
	bool read_only = false;
	enum class Cache { None, Writeback } cache = Cache::Writeback;  // None: O_DIRECT
};

// A drive's image, opened, checked and locked, not yet a device: the
// preflight opens it before KVM (a locked image is a config error, exit 2)
// and the machine makes the device of it, holding the lock all along.
struct BlockImage {
	BlockOptions options;
	UniqueFd fd;
	uint64_t sectors = 0;  // of 512 bytes
};

// Opens, checks and locks the image; the error names the path and why
// (missing, not a regular file or block device, locked by another process,
// size not a multiple of 512).
Result<BlockImage> open_block_image(const BlockOptions &options);

// The device on an image open_block_image returned. Does not start the
// thread (VirtioDevice::start). Errors: the device's eventfds.
Result<std::shared_ptr<VirtioDevice>> make_block(const GuestRam &ram, BlockImage image);

// open_block_image, then make_block.
Result<std::shared_ptr<VirtioDevice>> open_block(const GuestRam &ram, const BlockOptions &options);

}  // namespace kairos::devices::virtio
