#include "vmm/guest_loader.h"

#include <fstream>
#include <memory>
#include <span>

#include <fmt/format.h>

#include "base/error.h"
#include "vmm/acpi.h"
#include "vmm/layout.h"
#include "vmm/mptable.h"
#include "vmm/pvh.h"

namespace kairos::vmm {
namespace {

// A file's bytes, in a buffer the read fills without zeroing it first.
struct FileBytes {
	std::unique_ptr<uint8_t[]> data;
	uint64_t size = 0;
	std::span<const uint8_t> span() const { return {data.get(), size}; }
};

// One read of the whole size: a vmlinux is 60+ MiB, which a byte-by-byte
// stream iterator takes seconds to copy in a nested or emulated machine,
// and which a zeroed buffer (std::vector's) would write twice.
Result<FileBytes> read_whole_file(const std::filesystem::path &path, const char *key)
{
	std::ifstream in(path, std::ios::binary);
	if (!in)
		return errno_error(fmt::format("{} {}", key, path.string()));
	std::error_code error;  // a directory or device has no size to read
	uint64_t size = std::filesystem::file_size(path, error);
	if (error)
		return make_error("{} {}: {}", key, path.string(), error.message());
	FileBytes bytes{std::make_unique_for_overwrite<uint8_t[]>(size), size};
	if (!in.read(reinterpret_cast<char *>(bytes.data.get()), static_cast<std::streamsize>(size)))
		return make_error("{} {}: read only {} of {} bytes", key, path.string(), in.gcount(), size);
	return bytes;
}

// Firmware tables: the MP table for acpi=off guests, ACPI otherwise (Linux
// prefers the MADT when both are there), and the reset stub. The DSDT
// lists one virtio-mmio device per used slot (drives, network, vsock).
Status write_firmware_tables(const GuestMemory &memory, uint32_t vcpus, uint32_t virtio_devices)
{
	auto mp_table = build_mp_table(layout::kMpTableAddr, vcpus);
	if (mp_table.size() > layout::kMpTableMaxSize)
		return make_error("MP table for {} vCPUs does not fit", vcpus);
	KAIROS_TRY(memory.write_bytes(layout::kMpTableAddr, mp_table));
	AcpiOptions acpi = acpi_options_for_machine(vcpus, virtio_devices);
	auto tables = build_acpi_tables(layout::kAcpiTablesAddr, acpi);
	if (!tables)
		return tables.error();
	if (layout::kAcpiTablesAddr + tables->size() > layout::kMpTableAddr)
		return make_error("ACPI tables for {} vCPUs do not fit below the MP table", vcpus);
	KAIROS_TRY(memory.write_bytes(layout::kAcpiTablesAddr, *tables));
	return memory.write_bytes(layout::kResetVectorAddr, build_reset_vector(acpi));
}

// The command line against the kernel's limit, naming what Kairos added:
// a boot.cmdline that fits with kvm-clock on may not fit with it off.
Status check_cmdline_length(const Config &config, std::optional<uint32_t> tsc_khz, std::span<const uint8_t> kernel)
{
	auto limit = is_elf(kernel) ? Result<uint64_t>(kPvhCmdlineLimit) : kernel_cmdline_limit(kernel);
	if (!limit)
		return make_error("boot.kernel {}: {}", config.boot.kernel.string(), limit.error().message);
	std::string added = cmdline_additions(config, tsc_khz);
	uint64_t length = config.boot.cmdline.size() + added.size();
	if (length <= *limit)
		return {};
	if (added.empty())
		return make_error("boot.cmdline: {} bytes; this kernel accepts at most {}", length, *limit);
	return make_error("boot.cmdline: {} bytes of your own and {} that Kairos adds (' tsc_early_khz=' and "
			  "the TSC rate, because clock.kvmclock is false); this kernel accepts at most {}",
			  config.boot.cmdline.size(), added.size(), *limit);
}

}  // namespace

Result<PreparedGuest> prepare_guest(const Config &config)
{
	KAIROS_TRY_ASSIGN(memory, GuestMemory::create(config.machine.memory_mib << 20));
	KAIROS_TRY_ASSIGN(entry, load_guest(memory, config, kLongestTscKhz));
	return PreparedGuest{std::move(memory), entry};
}

Status check_guest(const Config &config)
{
	KAIROS_TRY(prepare_guest(config));
	return {};
}

Status finish_guest_cmdline(const GuestMemory &memory, const Config &config, std::optional<uint32_t> tsc_khz)
{
	if (cmdline_additions(config, kLongestTscKhz).empty())
		return {};
	// Never longer than what prepare_guest wrote and checked.
	std::string cmdline = guest_cmdline(config, tsc_khz);
	return write_kernel_cmdline(memory, cmdline, cmdline.size());
}

std::string kernel_format(const Config &config)
{
	std::ifstream in(config.boot.kernel, std::ios::binary);
	std::vector<uint8_t> magic(4);
	in.read(reinterpret_cast<char *>(magic.data()), static_cast<std::streamsize>(magic.size()));
	return is_elf(magic) ? "ELF vmlinux (PVH entry)" : "bzImage (64-bit entry)";
}

std::string cmdline_additions(const Config &config, std::optional<uint32_t> tsc_khz)
{
	if (config.clock.kvmclock || !tsc_khz || config.boot.cmdline.find("tsc_early_khz=") != std::string::npos)
		return "";
	return fmt::format(" tsc_early_khz={}", *tsc_khz);
}

std::string guest_cmdline(const Config &config, std::optional<uint32_t> tsc_khz)
{
	return config.boot.cmdline + cmdline_additions(config, tsc_khz);
}

Result<BootEntry> load_guest(const GuestMemory &memory, const Config &config, std::optional<uint32_t> tsc_khz)
{
	KAIROS_TRY_ASSIGN(kernel, read_whole_file(config.boot.kernel, "boot.kernel"));
	FileBytes initrd;
	if (!config.boot.initrd.empty()) {
		KAIROS_TRY_ASSIGN(bytes, read_whole_file(config.boot.initrd, "boot.initrd"));
		initrd = std::move(bytes);
	}
	KAIROS_TRY(check_cmdline_length(config, tsc_khz, kernel.span()));
	KernelFiles files{kernel.span(), initrd.span(), guest_cmdline(config, tsc_khz)};
	auto entry = is_elf(files.bzimage) ? load_pvh(memory, files) : load_linux(memory, files);
	if (!entry)
		return make_error("boot.kernel {}: {}", config.boot.kernel.string(), entry.error().message);
	KAIROS_TRY(write_firmware_tables(memory, config.machine.vcpus, config.virtio_device_count()));
	return *entry;
}

}  // namespace kairos::vmm
