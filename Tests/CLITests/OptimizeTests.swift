import Foundation
import GraphTesting
import Importers
import Testing

@testable import Graph

/// `rebirth optimize` flags, reports and errors; `rebirth passes`.
@Suite struct OptimizeTests {
  let soup = TestEnvironment.repositoryRoot.appendingPathComponent("fixtures/passes/identity_soup.onnx").path

  private func optimize(_ arguments: [String]) throws -> (ProcessResult, URL) {
    let folder = try TestEnvironment.makeTemporaryDirectory()
    let out = folder.appendingPathComponent("out.onnx")
    return (try runRebirth(["optimize", soup, out.path] + arguments), folder)
  }

  @Test func summaryAndFullReport() throws {
    let folder = try TestEnvironment.makeTemporaryDirectory()
    defer { try? FileManager.default.removeItem(at: folder) }
    let reportPath = folder.appendingPathComponent("report.txt").path
    let result = try runRebirth([
      "optimize", soup, folder.appendingPathComponent("out.onnx").path,
      "--passes", "eliminate-identity,eliminate-dead-code", "--report", reportPath,
    ])
    #expect(result.status == 0, "\(result.stderr)")
    let report = try String(contentsOfFile: reportPath, encoding: .utf8)
    #expect(report.hasPrefix(result.stdout), "the report starts with the printed summary")
    let stable = maskingTimings(report).replacingOccurrences(of: folder.path, with: "<tmp>")
      .replacingOccurrences(of: soup, with: "identity_soup.onnx")
    assertSnapshot(stable, named: "identity_soup.report.txt")
  }

  @Test func jsonReportDecodes() throws {
    let (result, folder) = try optimize(["--format", "json"])
    defer { try? FileManager.default.removeItem(at: folder) }
    #expect(result.status == 0, "\(result.stderr)")
    let json = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
    let run = json?["run"] as? [String: Any]
    let changes = run?["changes"] as? [[String: Any]] ?? []
    #expect(changes.filter { $0["pass"] as? String == "eliminate-identity" }.count == 10)
    let before = json?["before"] as? [String: Any], after = json?["after"] as? [String: Any]
    #expect(before?["nodeCount"] as? Int == 14)
    #expect((after?["nodeCount"] as? Int ?? 99) <= 3)
  }

  @Test func maxRewritesStopsAfterThatManyRewrites() throws {
    let (result, folder) = try optimize(["--passes", "eliminate-identity", "--max-rewrites", "3", "--format", "json"])
    defer { try? FileManager.default.removeItem(at: folder) }
    #expect(result.status == 0, "\(result.stderr)")
    let json = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
    let run = json?["run"] as? [String: Any]
    let changes = (run?["changes"] as? [[String: Any]] ?? []).filter { $0["pass"] as? String == "eliminate-identity" }
    #expect(changes.count == 3)
    #expect(run?["stoppedAtRewriteLimit"] as? Bool == true)
    // The output is a valid model with the rest of the no-ops still in it.
    let model = try ONNXImporter.load(path: folder.appendingPathComponent("out.onnx").path)
    #expect(model.graph.nodeCount == 14 - 3 - 1)  // three rewrites, and the dead Sigmoid
  }

  @Test func printChangesShowsTheTextualDiff() throws {
    let (result, folder) = try optimize(["--passes", "eliminate-identity", "--print-changes"])
    defer { try? FileManager.default.removeItem(at: folder) }
    #expect(result.status == 0)
    #expect(result.stdout.contains("== eliminate-identity"))
    #expect(result.stdout.contains("-   x1 = Identity (x)"))
    #expect(result.stdout.contains("+   [conv] c = Conv <pads: ints = [1, 1, 1, 1]> (x, w)"))
  }

  @Test(arguments: [
    (["--passes", "elimnate-identity"], "unknown pass 'elimnate-identity'; did you mean 'eliminate-identity'?"),
    (["--enable", "eliminate-identit"], "did you mean 'eliminate-identity'?"),
    (["--passes", "none", "--enable", "eliminate-identity"], "cannot be combined"),
    (["--pass-option", "eliminate-identity.x=1"], "pass 'eliminate-identity' has no option 'x'"),
    (["--pass-option", "nonsense"], "--pass-option wants PASS.KEY=VALUE"),
    (["--passes", "eliminate-dead-code", "--pass-option", "eliminate-identity.x=1"], "is not in this pipeline"),
    (["--preset", "fast"], "unknown preset 'fast'"),
    (["--enable", "eliminate-identity", "--disable", "eliminate-identity"], "both enabled and disabled"),
    (["--max-rewrites=-1"], "--max-rewrites must be at least 0"),
    (["--enable", "fuse-attention"], "pass 'fuse-attention' writes onnxruntime's com.microsoft contrib ops: add --allow-contrib-ops"),
    (["--passes", "fuse-attention"], "add --allow-contrib-ops"),
  ])
  func usageErrorsAreOneLineWithExitStatus2(arguments: [String], message: String) throws {
    let (result, folder) = try optimize(arguments)
    defer { try? FileManager.default.removeItem(at: folder) }
    #expect(result.status == 2)
    #expect(result.stderr.contains(message), "\(result.stderr)")
    #expect(result.stderr.split(separator: "\n").count == 1, "\(result.stderr)")
    #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("out.onnx").path))
  }

  @Test func passesListsEveryRegisteredPass() throws {
    let text = try runRebirth(["passes"])
    #expect(text.status == 0)
    assertSnapshot(text.stdout, named: "passes.txt")
    let json = try runRebirth(["passes", "--format", "json"])
    let entries = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [[String: Any]] ?? []
    #expect(entries.contains { $0["name"] as? String == "eliminate-identity" && $0["exact"] as? Bool == true })
    #expect(entries.count == text.stdout.split(separator: "\n").filter { !$0.hasPrefix(" ") }.count)
  }
}
