#include <faasd/sandbox/manifest.hpp>

#include <catch2/catch.hpp>

using namespace faasd::sandbox;

TEST_CASE("faasd.json: a full manifest parses", "[sandbox][unit]") {
    auto m = parse_manifest(R"({"command": ["python3", "main.py", "--fast"], "network": true,
                                "env": {"PYTHONUNBUFFERED": "1"}, "outputs": {"report": "report.csv"},
                                "description": "ignored"})");
    REQUIRE(m.has_value());
    CHECK(m->command == std::vector<std::string>{"python3", "main.py", "--fast"});
    CHECK(m->network == true);
    CHECK(m->env.at("PYTHONUNBUFFERED") == "1");
    CHECK(m->outputs.at("report") == "report.csv");

    auto minimal = parse_manifest(R"({"command": ["./run.sh"]})");
    REQUIRE(minimal.has_value());
    CHECK_FALSE(minimal->network.has_value());
}

TEST_CASE("faasd.json: mistakes are rejected with a reason", "[sandbox][unit]") {
    for (const char* bad : {
             "",                                          // not JSON
             "[]",                                        // not an object
             R"({"command": "python3 main.py"})",         // a string, not argv
             R"({"command": []})",                        // empty
             R"({"command": ["python3", ""]})",           // empty argument
             R"({"command": ["python3", 1]})",            // not a string
             R"({"comand": ["python3"]})",                // typo: unknown key
             R"({"command": ["x"], "network": "yes"})",   // not a bool
             R"({"command": ["x"], "env": {"1X": "a"}})",  // bad name
             R"({"command": ["x"], "env": {"FAASD_JOB_ID": "a"}})",  // reserved
             R"({"command": ["x"], "env": {"A": 1}})",    // not a string
             R"({"command": ["x"], "outputs": {"s": "../etc/passwd"}})",
             R"({"command": ["x"], "outputs": {"s": ".."}})",
         }) {
        INFO(bad);
        auto m = parse_manifest(bad);
        REQUIRE_FALSE(m.has_value());
        CHECK(m.error().code == "invalid_manifest");
        CHECK(m.error().message.rfind("faasd.json: ", 0) == 0);
    }
    CHECK_FALSE((parse_manifest(std::string(70 * 1024, ' '))).has_value());
}

TEST_CASE("the command comes from the job's entry, then faasd.json, then ./main", "[sandbox][unit]") {
    convention_input in;
    in.manifest_text = R"({"command": ["python3", "main.py"], "network": true, "env": {"A": "1"}})";
    in.has_executable_main = true;

    auto from_manifest = resolve_function(in);
    REQUIRE(from_manifest.has_value());
    CHECK(from_manifest->argv == std::vector<std::string>{"python3", "main.py"});
    CHECK(from_manifest->source == "manifest");
    CHECK(from_manifest->wants_network);
    CHECK(from_manifest->env.at("A") == "1");

    in.job_entry = {"sh", "other.sh"};
    auto from_entry = resolve_function(in);
    REQUIRE(from_entry.has_value());
    CHECK(from_entry->argv == std::vector<std::string>{"sh", "other.sh"});
    CHECK(from_entry->source == "entry");
    CHECK(from_entry->wants_network);  // the manifest's settings still apply

    convention_input main_only;
    main_only.has_executable_main = true;
    auto from_main = resolve_function(main_only);
    REQUIRE(from_main.has_value());
    CHECK(from_main->argv == std::vector<std::string>{"./main"});
    CHECK(from_main->source == "main");
    CHECK_FALSE(from_main->wants_network);

    convention_input nothing;
    auto none = resolve_function(nothing);
    REQUIRE_FALSE(none.has_value());
    CHECK(none.error().code == "no_entry");

    convention_input manifest_without_command;
    manifest_without_command.manifest_text = R"({"network": false})";
    REQUIRE_FALSE((resolve_function(manifest_without_command)).has_value());
    manifest_without_command.has_executable_main = true;
    CHECK(resolve_function(manifest_without_command)->source == "main");

    convention_input broken;
    broken.manifest_text = "{";
    broken.job_entry = {"true"};
    auto b = resolve_function(broken);
    REQUIRE_FALSE(b.has_value());  // a broken manifest is an error even with an entry
    CHECK(b.error().code == "invalid_manifest");
}

TEST_CASE("output files are matched to sinks by mapping, exact name, then stem", "[sandbox][unit]") {
    std::vector<std::string> files{"data.csv", "log.txt", "report", "report.html", "summary.json", "x.tar.gz"};
    std::vector<std::string> sinks{"report", "data", "summary", "x", "missing", "mapped"};
    std::map<std::string, std::string> mapping{{"mapped", "log.txt"}};
    auto m = match_outputs(files, sinks, mapping);
    std::map<std::string, std::string> got;
    for (const auto& o : m) got[o.file] = o.sink;
    CHECK(m.size() == files.size());
    CHECK(got["log.txt"] == "mapped");
    CHECK(got["report"] == "report");       // exact name beats stem
    CHECK(got["report.html"] == "");        // its stem sink is taken
    CHECK(got["data.csv"] == "data");
    CHECK(got["summary.json"] == "summary");
    CHECK(got["x.tar.gz"] == "x");          // stem is up to the first dot

    // An ambiguous stem delivers nothing rather than guessing.
    auto amb = match_outputs({"out.csv", "out.json"}, {"out"}, {});
    CHECK(amb[0].sink.empty());
    CHECK(amb[1].sink.empty());
    // A mapping to a file that does not exist delivers nothing (and does not fall back).
    auto gone = match_outputs({"r"}, {"r"}, {{"r", "other"}});
    CHECK(gone[0].sink.empty());
}

TEST_CASE("environment and file names are checked", "[sandbox][unit]") {
    CHECK(is_valid_env_name("PYTHONPATH"));
    CHECK(is_valid_env_name("_x1"));
    CHECK_FALSE(is_valid_env_name(""));
    CHECK_FALSE(is_valid_env_name("1A"));
    CHECK_FALSE(is_valid_env_name("A-B"));
    CHECK_FALSE(is_valid_env_name("FAASD_INPUT_DIR"));
    CHECK(is_plain_file_name("a.txt"));
    CHECK_FALSE(is_plain_file_name("."));
    CHECK_FALSE(is_plain_file_name(".."));
    CHECK_FALSE(is_plain_file_name("a/b"));
    CHECK_FALSE(is_plain_file_name(std::string("a\0b", 3)));
    CHECK_FALSE(is_plain_file_name(std::string(256, 'a')));
}
