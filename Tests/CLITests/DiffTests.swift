import Exporters
import Foundation
import Graph
import GraphTesting
import Testing

/// `rebirth diff A B`: text snapshots, JSON, the Graphviz picture and errors.
@Suite struct DiffTests {
  let soup = TestEnvironment.fixture("passes/identity_soup.onnx")

  /// A small stem: a Pad, a Conv, a BatchNormalization, an Identity, a second Conv and a Relu.
  static let stemBefore = """
    <ir_version: 8, opset_import: ["" : 17]>
    stem (float[1,3,16,16] x) => (float[1,8,8,8] y) <
      float[8,3,3,3] w1 = \(floatLiteral(216, seed: 1)),
      float[8] gamma = \(floatLiteral(8, seed: 2)),
      float[8] beta = \(floatLiteral(8, seed: 3)),
      float[8] mean = \(floatLiteral(8, seed: 4)),
      float[8] var = {1.0, 2.0, 0.5, 1.5, 1.0, 0.25, 3.0, 1.0},
      float[8,8,1,1] w2 = \(floatLiteral(64, seed: 5)),
      float[8] b2 = \(floatLiteral(8, seed: 6)),
      int64[8] pads = {0, 0, 1, 1, 0, 0, 1, 1}
    > {
      padded = Pad (x, pads)
      [conv1] c1 = Conv <kernel_shape: ints = [3, 3], strides: ints = [2, 2]> (padded, w1)
      [bn1] n1 = BatchNormalization <epsilon: float = 0.001> (c1, gamma, beta, mean, var)
      [relu1] r1 = Relu (n1)
      id = Identity (r1)
      [conv2] c2 = Conv <kernel_shape: ints = [1, 1]> (id, w2, b2)
      [act] y = Relu (c2)
    }
    """

  /// The stem with the Pad and the BatchNormalization folded into conv1, the Identity gone, the
  /// last Relu made a LeakyRelu and a Mul added after it.
  static let stemAfter = """
    <ir_version: 8, opset_import: ["" : 17]>
    stem (float[1,3,16,16] x) => (float[1,8,8,8] y) <
      float[8,3,3,3] w1 = \(floatLiteral(216, seed: 11)),
      float[8] conv1_bias = \(floatLiteral(8, seed: 12)),
      float[8,8,1,1] w2 = \(floatLiteral(64, seed: 5)),
      float[8] b2 = \(floatLiteral(8, seed: 6)),
      float[1] half = {0.5}
    > {
      [conv1] c1 = Conv <kernel_shape: ints = [3, 3], pads: ints = [1, 1, 1, 1], strides: ints = [2, 2]> (x, w1, conv1_bias)
      [relu1] r1 = Relu (c1)
      [conv2] c2 = Conv <kernel_shape: ints = [1, 1]> (r1, w2, b2)
      [act] a = LeakyRelu <alpha: float = 0.01> (c2)
      [scale] y = Mul (a, half)
    }
    """

  /// `blocks` Conv, BatchNormalization, Relu blocks; folded: Conv (new weights and a bias), Relu.
  static func chain(blocks: Int, folded: Bool) -> String {
    var weights: [String] = [], nodes: [String] = []
    var x = "x"
    for i in 0..<blocks {
      weights.append("float[4,4,1,1] w\(i) = \(floatLiteral(16, seed: UInt64(folded ? 100 + i : i)))")
      nodes.append("[conv\(i)] c\(i) = Conv <kernel_shape: ints = [1, 1]> (\(x), w\(i)\(folded ? ", b\(i)" : ""))")
      if folded {
        weights.append("float[4] b\(i) = \(floatLiteral(4, seed: UInt64(200 + i)))")
        nodes.append("[relu\(i)] r\(i) = Relu (c\(i))")
      } else {
        weights.append("float[4] s\(i) = {1.0, 2.0, 3.0, 4.0}")
        nodes.append("[bn\(i)] n\(i) = BatchNormalization (c\(i), s\(i), s\(i), s\(i), s\(i))")
        nodes.append("[relu\(i)] r\(i) = Relu (n\(i))")
      }
      x = "r\(i)"
    }
    nodes.append("y = Identity (\(x))")
    return """
      <ir_version: 8, opset_import: ["" : 17]>
      chain (float[1,4,2,2] x) => (float[1,4,2,2] y) <
        \(weights.joined(separator: ",\n  "))
      > {
        \(nodes.joined(separator: "\n  "))
      }
      """
  }

  /// Writes the models in the textual form as .onnx files in a new folder.
  private func write(_ texts: [String: String]) throws -> URL {
    let folder = try TestEnvironment.makeTemporaryDirectory()
    for (name, text) in texts {
      try ONNXExporter.write(try Model(parsing: text), to: folder.appendingPathComponent(name).path)
    }
    return folder
  }

  /// What `rebirth diff` prints for files of `folder`, their paths shown relative to it.
  private func diff(_ folder: URL, _ arguments: [String]) throws -> String {
    let result = try runRebirth(["diff"] + arguments.map { $0.hasSuffix(".onnx") ? folder.appendingPathComponent($0).path : $0 })
    #expect(result.status == 0, "stderr: \(result.stderr)")
    return result.stdout.replacingOccurrences(of: folder.path + "/", with: "")
  }

  @Test func identitySoupAgainstItsCleanup() throws {
    let folder = try TestEnvironment.makeTemporaryDirectory()
    defer { try? FileManager.default.removeItem(at: folder) }
    let out = folder.appendingPathComponent("soup_clean.onnx").path
    let optimize = try runRebirth(["optimize", soup, out, "--passes", "eliminate-identity,eliminate-dead-code"])
    #expect(optimize.status == 0, "\(optimize.stderr)")
    let result = try runRebirth(["diff", soup, out])
    #expect(result.status == 0, "\(result.stderr)")
    let stable = result.stdout.replacingOccurrences(of: soup, with: "identity_soup.onnx")
      .replacingOccurrences(of: out, with: "soup_clean.onnx")
    assertSnapshot(stable, named: "diff_identity_soup.txt")
  }

  @Test func foldedStem() throws {
    let folder = try write(["before.onnx": Self.stemBefore, "after.onnx": Self.stemAfter])
    defer { try? FileManager.default.removeItem(at: folder) }
    let result = try diff(folder, ["before.onnx", "after.onnx"])
    assertSnapshot(result, named: "diff_stem.txt")
  }

  @Test func longListsAreGroupedByOpTypeUnlessVerbose() throws {
    let folder = try write(["a.onnx": Self.chain(blocks: 40, folded: false), "b.onnx": Self.chain(blocks: 40, folded: true)])
    defer { try? FileManager.default.removeItem(at: folder) }
    let grouped = try diff(folder, ["a.onnx", "b.onnx"])
    assertSnapshot(grouped, named: "diff_chain_grouped.txt")
    let verbose = try diff(folder, ["a.onnx", "b.onnx", "--verbose"])
    #expect(verbose.contains("  BatchNormalization bn39 → merged into Conv conv39\n"))
    #expect(verbose.components(separatedBy: "\n").count > 150)
  }

  @Test func sameModelHasNoDifferences() throws {
    let result = try runRebirth(["diff", soup, soup])
    #expect(result.status == 0)
    #expect(result.stdout.hasSuffix("no differences (14 nodes matched)\n"), "\(result.stdout)")
  }

  @Test func jsonDecodesToTheSameDiff() throws {
    let folder = try write(["before.onnx": Self.stemBefore, "after.onnx": Self.stemAfter])
    defer { try? FileManager.default.removeItem(at: folder) }
    let json = try diff(folder, ["before.onnx", "after.onnx", "--format", "json"])
    let decoded = try JSONDecoder().decode(GraphDiff.self, from: Data(json.utf8))
    #expect(decoded.removed.map(\.label) == ["Identity →id"])
    #expect(decoded.merged.map { "\($0.node.label) → \($0.into.label)" } == [
      "Pad →padded → Conv conv1", "BatchNormalization bn1 → Conv conv1",
    ])
    #expect(decoded.added.map(\.label) == ["Mul scale"])
    #expect(decoded.changed.map(\.b.label) == ["Conv conv1", "LeakyRelu act"])
    let conv1 = try #require(decoded.changed.first)
    #expect(conv1.attributes.map { "\($0.name): \($0.before ?? "unset") → \($0.after ?? "unset")" } == ["pads: unset → [1,1,1,1]"])
    #expect(conv1.inputs.map(\.kind) == [.weight, .added])
    #expect(conv1.inputs.first?.valuesChanged == true)
    #expect(decoded.before.nodeCount == 7 && decoded.after.nodeCount == 5)
    #expect(decoded.unchangedCount == 2)
  }

  @Test func dotHighlightsAddedChangedAndRemovedNodes() throws {
    let folder = try write(["before.onnx": Self.stemBefore, "after.onnx": Self.stemAfter])
    defer { try? FileManager.default.removeItem(at: folder) }
    let dot = folder.appendingPathComponent("diff.dot")
    _ = try diff(folder, ["before.onnx", "after.onnx", "--dot", dot.path])
    let text = try String(contentsOf: dot, encoding: .utf8)
    #expect(text.hasPrefix("digraph \"stem\" {"))
    let lines = text.split(separator: "\n").map(String.init)
    func line(_ label: String) -> String? { lines.first { $0.contains("label=\"\(label)\"") && !$0.contains("->") } }
    #expect(line("Mul\\nscale")?.contains(Graphviz.addedColor) == true)
    #expect(line("Conv\\nconv1")?.contains(Graphviz.changedColor) == true)
    #expect(line("LeakyRelu\\nact")?.contains(Graphviz.changedColor) == true)
    #expect(line("Conv\\nconv2")?.contains("fillcolor") == false)
    #expect(line("BatchNormalization\\nbn1")?.contains("dashed") == true)
    #expect(line("Identity\\n→id")?.contains("dashed") == true)
    #expect(text.contains("label=\"merged\""))
    #expect(text.contains("label=\"1×8×8×8\""), "edges carry shapes")
  }

  @Test func aBadModelIsOneLineAndStatusOne() throws {
    let folder = try TestEnvironment.makeTemporaryDirectory()
    defer { try? FileManager.default.removeItem(at: folder) }
    let bad = folder.appendingPathComponent("bad.onnx")
    try Data("definitely not a protobuf".utf8).write(to: bad)
    let result = try runRebirth(["diff", soup, bad.path])
    #expect(result.status == 1)
    #expect(result.stderr.hasPrefix("rebirth: \(bad.path): "), "\(result.stderr)")
    #expect(result.stderr.split(separator: "\n").count == 1)
    #expect(result.stdout.isEmpty)
    let missing = try runRebirth(["diff", folder.appendingPathComponent("missing.onnx").path, soup])
    #expect(missing.status == 1)
    #expect(missing.stderr == "rebirth: \(folder.appendingPathComponent("missing.onnx").path): no such file\n")
  }
}
