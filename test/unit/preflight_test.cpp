// What check and run find before KVM (issue 11).
#include <catch2/catch.hpp>

#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "vmm/preflight.h"
#include "vmm/virtio_devices.h"

using kairos::vmm::check_writable_path;

TEST_CASE("preflight: a path is writable if its file or its directory is", "[preflight]")
{
	std::string pattern = (std::filesystem::temp_directory_path() / "kairos-preflight-XXXXXX").string();
	std::filesystem::path dir = mkdtemp(pattern.data());
	CHECK(check_writable_path(dir / "new.json", "--stats").ok());
	CHECK(check_writable_path("relative-in-cwd.json", "--stats").ok() == (access(".", W_OK) == 0));

	auto missing = check_writable_path(dir / "no" / "such" / "s.json", "--stats");
	REQUIRE_FALSE(missing.ok());
	CHECK(missing.error().message == "--stats " + (dir / "no/such/s.json").string() + ": the directory " +
						 (dir / "no/such").string() + " does not exist");

	auto directory = check_writable_path(dir, "console.output");
	REQUIRE_FALSE(directory.ok());
	CHECK(directory.error().message == "console.output " + dir.string() + ": is a directory");

	if (geteuid() != 0) {  // root may write anything
		std::ofstream(dir / "ro.json") << "{}";
		std::filesystem::permissions(dir / "ro.json", std::filesystem::perms::owner_read);
		CHECK_FALSE(check_writable_path(dir / "ro.json", "--stats").ok());
	}
	std::filesystem::remove_all(dir);
}

TEST_CASE("preflight: each drive's image is opened and locked as the run will, then let go", "[preflight]")
{
	std::string pattern = (std::filesystem::temp_directory_path() / "kairos-preflight-XXXXXX").string();
	std::filesystem::path dir = mkdtemp(pattern.data());
	std::ofstream(dir / "disk.img").close();
	std::filesystem::resize_file(dir / "disk.img", 1 << 20);
	kairos::vmm::Config config;
	config.drives = {{"root", dir / "disk.img"}, {"data", dir / "gone.img", true}};

	auto missing = kairos::vmm::check_virtio_devices(config);
	REQUIRE_FALSE(missing.ok());
	// The drive's key first, and the path the user must fix.
	CHECK_THAT(missing.error().message,
		   Catch::StartsWith("drives[1].path: ") && Catch::Contains((dir / "gone.img").string()));

	config.drives.pop_back();
	CHECK(kairos::vmm::check_virtio_devices(config).ok());
	CHECK(kairos::vmm::check_virtio_devices(config).ok());  // the first check's lock is gone

	std::ofstream(dir / "odd.img") << "not a multiple of 512";
	config.drives = {{"odd", dir / "odd.img"}};
	auto odd = kairos::vmm::check_virtio_devices(config);
	REQUIRE_FALSE(odd.ok());
	CHECK_THAT(odd.error().message, Catch::StartsWith("drives[0].path: "));
	std::filesystem::remove_all(dir);
}

TEST_CASE("preflight: run's drive images stay locked from the check to the machine", "[preflight]")
{
	std::string pattern = (std::filesystem::temp_directory_path() / "kairos-preflight-XXXXXX").string();
	std::filesystem::path dir = mkdtemp(pattern.data());
	for (const char *name : {"a.img", "b.img"}) {
		std::ofstream(dir / name).close();
		std::filesystem::resize_file(dir / name, 1 << 20);
	}
	kairos::vmm::Config config;
	config.drives = {{"a", dir / "a.img"}, {"b", dir / "b.img", true}};
	kairos::vmm::Config writer;  // another VM that wants b.img read-write
	writer.drives = {{"b", dir / "b.img"}};
	{
		auto kept = kairos::vmm::preflight_virtio_devices(config);
		REQUIRE(kept.ok());
		REQUIRE(kept->size() == 2);
		CHECK(kept->at(0).options.id == "a");
		CHECK(kept->at(0).sectors == 2048);
		CHECK(kept->at(1).options.read_only);
		// While the images are held, another VM's check finds them taken.
		auto taken = kairos::vmm::check_virtio_devices(config);
		REQUIRE_FALSE(taken.ok());
		CHECK_THAT(taken.error().message,
			   Catch::StartsWith("drives[0].path: ") && Catch::Contains("is locked by another process"));
		auto shared = kairos::vmm::check_virtio_devices(writer);
		REQUIRE_FALSE(shared.ok());
		CHECK_THAT(shared.error().message, Catch::Contains("is locked by another process"));
	}
	CHECK(kairos::vmm::check_virtio_devices(config).ok());  // let go with the images
	CHECK(kairos::vmm::check_virtio_devices(writer).ok());
	std::filesystem::remove_all(dir);
}
