// A synthetic bzImage for boot tests (Linux x86 boot protocol 2.15).
#pragma once

#include <asm/bootparam.h>

#include <cstdint>
#include <cstring>
#include <vector>

namespace kairos::test {

// A synthetic bzImage: a valid 2.15 setup header and a small "kernel".
inline std::vector<uint8_t> fake_bzimage(size_t kernel_bytes = 8192)
{
	constexpr size_t kSetupSectors = 4;
	std::vector<uint8_t> image((kSetupSectors + 1) * 512 + kernel_bytes, 0);
	boot_params params{};
	params.hdr.setup_sects = kSetupSectors;
	params.hdr.boot_flag = 0xaa55;
	params.hdr.jump = 0x66eb;  // jump length byte at 0x201 = 0x66
	params.hdr.header = 0x53726448;
	params.hdr.version = 0x020f;
	params.hdr.loadflags = LOADED_HIGH;
	params.hdr.initrd_addr_max = 0x7fffffff;
	params.hdr.cmdline_size = 2047;
	params.hdr.xloadflags = XLF_KERNEL_64;
	params.hdr.init_size = 0x200000;
	std::memcpy(image.data(), &params, sizeof(params));
	for (size_t i = 0; i < kernel_bytes; ++i)
		image[(kSetupSectors + 1) * 512 + i] = static_cast<uint8_t>(i * 7);
	return image;
}

}  // namespace kairos::test
