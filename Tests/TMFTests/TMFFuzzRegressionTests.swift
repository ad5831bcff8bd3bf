import Exporters
import Foundation
import Graph
import GraphTesting
import Runtime
import Testing

/// The `.tmf` fuzzer's property (fuzz/TMFReaderFuzzer.swift), replayed on every input it ever
/// broke (fixtures/fuzz-regressions-tmf, kept by fuzz/run-tmf.sh) and on its seeds
/// (fixtures/bad-tmf): opening gives a `TMFError`, or a model that verifies, rewrites, opens again
/// and prints the same.
@Suite struct TMFFuzzRegressionTests {
  static let inputs: [String] = {
    var paths: [String] = []
    for folder in ["fuzz-regressions-tmf", "bad-tmf"] {
      let dir = TestEnvironment.fixtures.appendingPathComponent(folder)
      let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
      paths += names.filter { $0.hasSuffix(".tmf") }.sorted().map { dir.appendingPathComponent($0).path }
    }
    return paths
  }()

  @Test(arguments: inputs)
  func theFuzzPropertyHolds(path: String) throws {
    let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
    let file: TMFFile
    do { file = try TMFReader.open(bytes: bytes, path: path) } catch { return }
    let model = file.model
    try model.graph.verify()
    guard let written = try? TMFWriter.serialize(model, metadata: file.metadata) else { return }
    let again = try TMFReader.open(bytes: written, path: "rewritten").model
    try again.graph.verify()
    #expect(again.text() == model.text())
  }

  @Test func theRegressionFolderHoldsOnlyKeptInputs() throws {
    let dir = TestEnvironment.fixtures.appendingPathComponent("fuzz-regressions-tmf")
    let entries = try FileManager.default.contentsOfDirectory(atPath: dir.path)
    #expect(entries.contains("README.md"))
    for entry in entries where entry != "README.md" {
      let kind = entry.split(separator: "-").first.map(String.init) ?? ""
      #expect(["crash", "leak", "timeout", "oom", "slow"].contains(kind) && entry.hasSuffix(".tmf"), "\(entry)")
    }
  }
}
