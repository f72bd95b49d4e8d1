#include "vmm/guest_loader.h"

#include <elf.h>

#include <array>
#include <memory>
#include <span>

#include <fmt/format.h>

#include "base/error.h"
#include "vmm/acpi.h"
#include "vmm/image_source.h"
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

// A whole file in one buffer (a bzImage, an initrd: a few MiB), not
// zeroed before the read fills it. Errors start with `key` and the path.
Result<FileBytes> read_whole_file(const FileImage &file, const std::filesystem::path &path, const char *key)
{
	FileBytes bytes{std::make_unique_for_overwrite<uint8_t[]>(file.size()), file.size()};
	if (auto read = file.read_at(0, {bytes.data.get(), bytes.size}); !read)
		return make_error("{} {}: {}", key, path.string(), read.error().message);
	return bytes;
}

Result<FileBytes> read_whole_file(const std::filesystem::path &path, const char *key)
{
	KAIROS_TRY_ASSIGN(file, FileImage::open(path, key));
	return read_whole_file(file, path, key);
}

bool file_is_elf(const ImageSource &image)
{
	std::array<uint8_t, SELFMAG> magic{};
	return image.size() >= magic.size() && image.read_at(0, magic).ok() && is_elf(magic);
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
// `limit`: the kernel's (kernel_cmdline_limit, or kPvhCmdlineLimit).
Status check_cmdline_length(const Config &config, std::optional<uint32_t> tsc_khz, Result<uint64_t> limit)
{
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
	auto kernel = FileImage::open(config.boot.kernel, "boot.kernel");
	return kernel && file_is_elf(*kernel) ? "ELF vmlinux (PVH entry)" : "bzImage (64-bit entry)";
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
	// A vmlinux (60+ MiB) is read in parts, its segments straight into
	// guest memory; a bzImage (a few MiB) whole, through a buffer.
	KAIROS_TRY_ASSIGN(kernel_file, FileImage::open(config.boot.kernel, "boot.kernel"));
	const bool elf = file_is_elf(kernel_file);
	FileBytes bzimage;
	if (!elf) {
		KAIROS_TRY_ASSIGN(bytes, read_whole_file(kernel_file, config.boot.kernel, "boot.kernel"));
		bzimage = std::move(bytes);
	}
	FileBytes initrd;
	if (!config.boot.initrd.empty()) {
		KAIROS_TRY_ASSIGN(bytes, read_whole_file(config.boot.initrd, "boot.initrd"));
		initrd = std::move(bytes);
	}
	KAIROS_TRY(check_cmdline_length(
		config, tsc_khz, elf ? Result<uint64_t>(kPvhCmdlineLimit) : kernel_cmdline_limit(bzimage.span())));
	const std::string cmdline = guest_cmdline(config, tsc_khz);
	auto entry = elf ? load_pvh(memory, kernel_file, initrd.span(), cmdline)
			 : load_linux(memory, {bzimage.span(), initrd.span(), cmdline});
	if (!entry)
		return make_error("boot.kernel {}: {}", config.boot.kernel.string(), entry.error().message);
	KAIROS_TRY(write_firmware_tables(memory, config.machine.vcpus, config.virtio_device_count()));
	return *entry;
}

}  // namespace kairos::vmm
