#include <catch2/catch.hpp>

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <memory>
#include <thread>

#include <nlohmann/json.hpp>

#include "base/unique_fd.h"
#include "vmm/control_socket.h"
#include "vmm/run_gate.h"

using namespace kairos::vmm;
using kairos::UniqueFd;

namespace {

// A fresh folder for one test's socket, removed after it.
struct TempDir {
	std::filesystem::path path;
	TempDir()
	{
		char name[] = "/tmp/kairos-control-XXXXXX";
		path = mkdtemp(name);
	}
	~TempDir() { std::filesystem::remove_all(path); }
};

UniqueFd connect_to(const std::filesystem::path &path)
{
	sockaddr_un address{};
	address.sun_family = AF_UNIX;
	std::snprintf(address.sun_path, sizeof address.sun_path, "%s", path.c_str());
	UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
	REQUIRE(fd);
	REQUIRE(connect(fd.get(), reinterpret_cast<const sockaddr *>(&address), sizeof address) == 0);
	timeval timeout{5, 0};
	setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
	return fd;
}

void send_text(const UniqueFd &fd, const std::string &text)
{
	REQUIRE(send(fd.get(), text.data(), text.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(text.size()));
}

// Runs the loop until `lines` reply lines came back on fd (or ~2 s).
std::string replies(EventLoop &loop, const UniqueFd &fd, size_t lines)
{
	std::string text;
	for (int i = 0; i < 200 && static_cast<size_t>(std::count(text.begin(), text.end(), '\n')) < lines; ++i) {
		REQUIRE(loop.run_once(10).ok());
		char chunk[4096];
		ssize_t got = recv(fd.get(), chunk, sizeof chunk, MSG_DONTWAIT);
		if (got > 0)
			text.append(chunk, static_cast<size_t>(got));
	}
	return text;
}

// Lets the loop accept, read and close for a while.
void spin(EventLoop &loop)
{
	for (int i = 0; i < 20; ++i)
		REQUIRE(loop.run_once(5).ok());
}

// Echoes the command back, as a Machine would answer it.
std::string echo(const ControlRequest &request)
{
	return control_ok_reply({{"command", to_string(request.command)}, {"port", request.port}});
}

// A control socket in a fresh folder, served by its own loop with echo.
struct ServedSocket {
	TempDir dir;
	std::filesystem::path path = dir.path / "api.sock";
	std::unique_ptr<ControlSocket> control;
	std::unique_ptr<EventLoop> loop;

	ServedSocket()
	{
		auto opened = ControlSocket::open(path);
		REQUIRE(opened.ok());
		control = std::move(*opened);
		auto created = EventLoop::create();
		REQUIRE(created.ok());
		loop = std::move(*created);
		REQUIRE(control->attach(*loop, echo).ok());
	}
};

}  // namespace

TEST_CASE("control socket: requests get replies in order, errors included", "[control]")
{
	ServedSocket served;
	const auto &path = served.path;
	struct stat file {};
	REQUIRE(lstat(path.c_str(), &file) == 0);
	CHECK(S_ISSOCK(file.st_mode));
	CHECK((file.st_mode & 0777) == 0600);
	EventLoop &loop = *served.loop;

	UniqueFd client = connect_to(path);
	// Pipelined, in two pieces: the second line split across sends.
	send_text(client, "{\"command\":\"pause\"}\n{\"command\":\"raise-");
	send_text(client, "event\",\"port\":9}\nnonsense\n");
	std::string text = replies(loop, client, 3);
	CHECK(text == "{\"command\":\"pause\",\"ok\":true,\"port\":0}\n"
		      "{\"command\":\"raise-event\",\"ok\":true,\"port\":9}\n"
		      "{\"error\":\"invalid JSON: a request is one JSON object on one line, e.g. "
		      "{\\\"command\\\": \\\"status\\\"}\",\"ok\":false}\n");
	CHECK(served.control->connections() == 1);
	client.reset();
	spin(loop);  // the loop sees the hang-up
	CHECK(served.control->connections() == 0);

	served.control.reset();
	CHECK_FALSE(std::filesystem::exists(path));  // removed at the end
}

TEST_CASE("control socket: an over-long line ends its connection with one error", "[control]")
{
	ServedSocket served;
	UniqueFd client = connect_to(served.path);
	std::string big(kMaxControlLine + 8192, 'x');
	std::thread sender([&] { send(client.get(), big.data(), big.size(), MSG_NOSIGNAL); });
	std::string text = replies(*served.loop, client, 1);
	sender.join();
	CHECK(text == "{\"error\":\"request longer than 65536 bytes; closing the connection\",\"ok\":false}\n");
	CHECK(served.control->connections() == 0);
}

TEST_CASE("control socket: at most kMaxConnections clients at once", "[control]")
{
	ServedSocket served;
	std::vector<UniqueFd> clients;
	for (size_t i = 0; i < ControlSocket::kMaxConnections; ++i) {
		clients.push_back(connect_to(served.path));
		spin(*served.loop);
	}
	CHECK(served.control->connections() == ControlSocket::kMaxConnections);
	UniqueFd one_more = connect_to(served.path);
	CHECK(replies(*served.loop, one_more, 1) ==
	      "{\"error\":\"too many control connections (at most 8)\",\"ok\":false}\n");
	CHECK(served.control->connections() == ControlSocket::kMaxConnections);
}

TEST_CASE("control socket: a taken path is refused, a stale socket replaced", "[control]")
{
	TempDir dir;
	auto file = dir.path / "not-a-socket";
	std::ofstream(file) << "keep me";
	auto refused = ControlSocket::open(file);
	REQUIRE_FALSE(refused.ok());
	CHECK(refused.error().message ==
	      "--api-sock " + file.string() + ": exists and is not a socket; refusing to replace it");
	CHECK(std::filesystem::file_size(file) == 7);

	auto path = dir.path / "api.sock";
	auto first = ControlSocket::open(path);
	REQUIRE(first.ok());
	auto second = ControlSocket::open(path);
	REQUIRE_FALSE(second.ok());
	CHECK(second.error().message ==
	      "--api-sock " + path.string() + ": a process already listens on this socket (another kairos?)");

	// A socket file nobody listens on (a killed kairos's) is replaced.
	{
		UniqueFd stale(socket(AF_UNIX, SOCK_STREAM, 0));
		auto stale_path = dir.path / "stale.sock";
		sockaddr_un address{};
		address.sun_family = AF_UNIX;
		std::snprintf(address.sun_path, sizeof address.sun_path, "%s", stale_path.c_str());
		REQUIRE(bind(stale.get(), reinterpret_cast<const sockaddr *>(&address), sizeof address) == 0);
		stale.reset();
		auto replaced = ControlSocket::open(stale_path);
		CHECK(replaced.ok());
	}

	auto too_long = ControlSocket::open(dir.path / std::string(200, 'a'));
	REQUIRE_FALSE(too_long.ok());
	CHECK(too_long.error().message.ends_with(": longer than 107 bytes, the limit of a Unix socket's path"));
	auto missing_dir = ControlSocket::open(dir.path / "no-such-dir" / "api.sock");
	REQUIRE_FALSE(missing_dir.ok());
	CHECK(missing_dir.error().message.ends_with(": No such file or directory: its folder does not exist"));
	// A share that cannot hold sockets (9p says ENXIO) is named as such.
	CHECK(ControlSocket::bind_failure(ENXIO) ==
	      "No such device or address: this file system cannot hold a Unix socket; put it on a local one, such "
	      "as /run or $XDG_RUNTIME_DIR");
	CHECK(ControlSocket::bind_failure(EACCES) == "Permission denied");
}

TEST_CASE("run gate: a closed gate holds vCPUs until it opens or a stop comes", "[control]")
{
	auto shutdown = Shutdown::create();
	REQUIRE(shutdown.ok());
	RunGate gate;
	CHECK_FALSE(gate.pass(*shutdown));  // open: no wait
	CHECK(gate.close());
	CHECK_FALSE(gate.close());
	std::atomic<int> passed{0};
	std::thread vcpu([&] {
		gate.pass(*shutdown);
		passed = 1;
	});
	for (int i = 0; i < 500 && gate.waiting() == 0; ++i)
		std::this_thread::sleep_for(std::chrono::milliseconds(1));
	CHECK(gate.waiting() == 1);
	CHECK(passed == 0);
	CHECK(gate.open());
	vcpu.join();
	CHECK(passed == 1);
	CHECK(gate.waiting() == 0);

	// Closed, then a stop: wake() lets the waiter go to see it.
	gate.close();
	std::thread stopping([&] { CHECK(gate.pass(*shutdown)); });
	for (int i = 0; i < 500 && gate.waiting() == 0; ++i)
		std::this_thread::sleep_for(std::chrono::milliseconds(1));
	shutdown->request(StopReason::UserQuit, "test");
	gate.wake();
	stopping.join();
	CHECK(gate.closed());
}
