// What confinement decides from the config, and the descriptor count
// --stats reports for /dev/kvm (the filters themselves: seccomp_test.cpp).
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <linux/capability.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "vmm/confinement.h"

using kairos::CapabilitySet;
using kairos::outsourcing::Priority;
using kairos::outsourcing::WindowConfig;
using kairos::vmm::capabilities_needed;
using kairos::vmm::Config;

TEST_CASE("confinement: CAP_SYS_NICE is kept only for a raised priority or windows", "[confinement]")
{
	const CapabilitySet nice = CapabilitySet::of({CAP_SYS_NICE});
	Config config;  // the defaults: outsourcing on, deadline windows
	CHECK(capabilities_needed(config) == nice);

	config.outsourcing.window.policy = WindowConfig::Policy::Off;
	CHECK(capabilities_needed(config).empty());
	config.outsourcing.priority = Priority{Priority::Policy::Fifo, 50};
	CHECK(capabilities_needed(config) == nice);
	config.outsourcing.priority = Priority{Priority::Policy::Nice, -5};
	CHECK(capabilities_needed(config) == nice);
	config.outsourcing.priority = Priority{};
	config.outsourcing.window.policy = WindowConfig::Policy::Fifo;
	CHECK(capabilities_needed(config) == nice);

	// No timer service (outsourcing off, or no Kairos device, which turns
	// it off in the config): nothing raises a priority.
	config.outsourcing.priority = Priority{Priority::Policy::Fifo, 50};
	config.outsourcing.enabled = false;
	CHECK(capabilities_needed(config).empty());
}

TEST_CASE("confinement: open descriptors of a device are counted", "[confinement]")
{
	auto before = kairos::vmm::count_descriptors_of_device("/dev/null");
	REQUIRE(before.ok());
	int first = open("/dev/null", O_RDONLY | O_CLOEXEC);
	int second = open("/dev/null", O_WRONLY | O_CLOEXEC);
	REQUIRE(first >= 0);
	REQUIRE(second >= 0);
	CHECK(kairos::vmm::count_descriptors_of_device("/dev/null").value() == *before + 2);
	// A number far above the first free ones (kairos's own are low) is
	// still below FDSize, which grows with the table.
	int high = fcntl(first, F_DUPFD_CLOEXEC, 900);
	REQUIRE(high >= 900);
	CHECK(kairos::vmm::count_descriptors_of_device("/dev/null").value() == *before + 3);
	close(high);
	close(first);
	close(second);
	CHECK(kairos::vmm::count_descriptors_of_device("/dev/null").value() == *before);
	// Another device's descriptors are not counted.
	int zero = open("/dev/zero", O_RDONLY | O_CLOEXEC);
	REQUIRE(zero >= 0);
	CHECK(kairos::vmm::count_descriptors_of_device("/dev/null").value() == *before);
	close(zero);

	auto missing = kairos::vmm::count_descriptors_of_device("/no/such/device");
	REQUIRE_FALSE(missing.ok());
	CHECK(missing.error().message == "stat /no/such/device: No such file or directory");
	auto file = std::filesystem::temp_directory_path() / ("kairos-not-a-device-" + std::to_string(getpid()));
	std::ofstream(file) << "x";
	auto regular = kairos::vmm::count_descriptors_of_device(file.string());
	std::filesystem::remove(file);
	REQUIRE_FALSE(regular.ok());
	CHECK(regular.error().message == file.string() + " is not a device");
}
