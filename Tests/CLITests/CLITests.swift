import Foundation
import GraphTesting
import Testing

/// The command line's contract: exit statuses, one-line errors, and no partial output.
@Suite struct CommandLineTests {
  @Test func versionAndHelp() throws {
    let version = try runRebirth(["--version"])
    #expect(version.status == 0)
    #expect(version.stdout.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ".").count == 3)
    let help = try runRebirth(["optimize", "--help"])
    #expect(help.status == 0)
    #expect(help.stdout.contains("--passes"))
    #expect(help.stdout.contains("Examples"))
  }

  @Test(arguments: [
    (["optimize"], "Missing expected argument"),
    (["optimize", "a.onnx", "b.txt"], "unknown model format"),
    (["optimize", "a.onnx", "b.onnx", "--passes", "nonee"], "did you mean 'none'"),
    (["optimize", "a.onnx", "b.onnx", "--passes", ""], "--passes needs"),
    (["optimize", "a.onnx", "b.onnx", "--preset", "fast"], "unknown preset"),
    (["frobnicate"], "Unexpected argument"),
  ])
  func usageErrorsExitWithTwo(arguments: [String], fragment: String) throws {
    let result = try runRebirth(arguments)
    #expect(result.status == 2)
    #expect(result.stderr.contains(fragment), "stderr was: \(result.stderr)")
  }

  @Test func aMissingModelIsOneLineAndStatusOne() throws {
    let dir = try TestEnvironment.makeTemporaryDirectory()
    let missing = dir.appendingPathComponent("missing.onnx").path
    let out = dir.appendingPathComponent("out.onnx").path
    let result = try runRebirth(["optimize", missing, out])
    #expect(result.status == 1)
    #expect(result.stderr == "rebirth: \(missing): no such file\n")
    #expect(!FileManager.default.fileExists(atPath: out))
  }

  @Test func aFailedRunNeverClobbersAnExistingOutput() throws {
    let dir = try TestEnvironment.makeTemporaryDirectory()
    let bad = dir.appendingPathComponent("bad.onnx")
    try Data("definitely not a protobuf".utf8).write(to: bad)
    let out = dir.appendingPathComponent("out.onnx")
    try Data("precious".utf8).write(to: out)
    let result = try runRebirth(["optimize", bad.path, out.path, "--passes", "none"])
    #expect(result.status == 1)
    #expect(try Data(contentsOf: out) == Data("precious".utf8))
    let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted()
    #expect(leftovers == ["bad.onnx", "out.onnx"])
  }

  @Test func aFixtureConvertsAndInspects() throws {
    let dir = try TestEnvironment.makeTemporaryDirectory()
    let out = dir.appendingPathComponent("out.onnx").path
    let convert = try runRebirth(["optimize", TestEnvironment.fixture("googlenet_stem.onnx"), out, "--passes", "none"])
    #expect(convert.status == 0, "stderr: \(convert.stderr)")
    let before = try runRebirth(["inspect", TestEnvironment.fixture("googlenet_stem.onnx"), "--format", "json"])
    let after = try runRebirth(["inspect", out, "--format", "json"])
    #expect(before.status == 0 && after.status == 0)
    let decode = { (s: String) throws -> [String: Any] in
      try JSONSerialization.jsonObject(with: Data(s.utf8)) as? [String: Any] ?? [:]
    }
    let a = try decode(before.stdout), b = try decode(after.stdout)
    #expect(a["nodes"] as? Int == b["nodes"] as? Int)
    #expect((a["nodes"] as? Int ?? 0) > 5)
    #expect(a["ops"] as? [String: Int] == b["ops"] as? [String: Int])
  }
}
