import Exporters
import Foundation
import Graph
import GraphTesting
import Importers
import Runtime
import Testing

/// A model `y = Gemm(x, w)` whose weight is `w` (transB = 1: w is [N, K]; else [K, N]).
private func gemmModel(_ weight: Tensor, transB: Bool) throws -> Model {
  var graph = Graph(name: "g")
  let k = transB ? weight.shape[1] : weight.shape[0], n = transB ? weight.shape[0] : weight.shape[1]
  let x = try graph.addInput(name: "x", type: .tensor(.float, shape: [.value(1), .value(k)]))
  let w = try graph.addInitializer(name: "w", weight)
  let node = try graph.addNode(
    opType: OpType.gemm, name: "fc", inputs: [x, w], outputs: ["y"], attributes: [Attribute("transB", .int(transB ? 1 : 0))])
  let y = try #require(graph[node].output(0))
  graph.updateValue(y) { $0.type = .tensor(.float, shape: [.value(1), .value(n)]) }
  graph.addOutput(y)
  var model = Model(graph: graph)
  model.irVersion = 8
  model.opsetImports = [OpsetImport(domain: "", version: 17)]
  return model
}

/// Seeded values in [-1, 1).
private func seededFloats(_ count: Int, seed: UInt64) -> [Float] {
  var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
  return (0..<count).map { _ in
    state ^= state << 13; state ^= state >> 7; state ^= state << 17
    return Float(state >> 40) / Float(1 << 23) - 1
  }
}

private func relativeError(_ a: [Float], _ b: [Float]) -> Double {
  let d = zip(a, b).reduce(0.0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) }
  return (d / a.reduce(0.0) { $0 + Double($1) * Double($1) }).squareRoot()
}

/// The weight `w` of a `.tmf` written from `model` with `weights`, as the reader decodes it.
private func decodedWeight(_ model: Model, _ weights: TMFWeightOptions) throws -> [Float] {
  let file = try TMFReader.open(bytes: try TMFWriter.serialize(model, weights: weights))
  let graph = file.model.graph
  let w = try #require(graph.initializers.first { graph[$0].name == "w" })
  return try #require(graph.constant(w)?.floats)
}

/// `.tmf` weight encodings (docs/tmf.md, "Encodings"): fp16, int8 per output channel, codebook.
@Suite struct TMFEncodingTests {
  @Test(arguments: [
    (TMFWeightEncoding.fp16, 256, 1e-3), (.int8, 256, 1.2e-2), (.codebook, 256, 1e-2), (.codebook, 16, 0.15),
  ])
  func encodingsRoundTripWithinTheirError(encoding: TMFWeightEncoding, codebookSize: Int, bound: Double) throws {
    let values = seededFloats(64 * 128, seed: 3)
    let model = try gemmModel(Tensor(floats: values, shape: [64, 128]), transB: true)
    let options = TMFWeightOptions(encoding: encoding, codebookSize: codebookSize)
    let decoded = try decodedWeight(model, options)
    let error = relativeError(values, decoded)
    #expect(error > 0 && error <= bound, "\(encoding): relative error \(error)")
    // The writer's own measurement is the same error.
    let dir = try TestEnvironment.makeTemporaryDirectory()
    let summary = try TMFWriter.write(model, to: dir.appendingPathComponent("m.tmf").path, weights: options)
    #expect(summary.encoded.map(\.name) == ["w"])
    #expect(abs(try #require(summary.encoded.first).relativeError - error) <= 1e-9)
    let size = try #require(summary.encoded.first).bytes
    let expected = [TMFWeightEncoding.fp16: 2 * values.count, .int8: values.count + 4 * 64][encoding]
      ?? (codebookSize == 16 ? values.count / 2 + 4 * 16 : values.count + 4 * 256)
    #expect(size == expected)
  }

  /// Each output channel `c` holds multiples of its own power-of-two scale 2^-(c+3), reaching ±127
  /// of it: per-channel scales reproduce every value exactly (one scale for the tensor could not).
  @Test(arguments: [true, false])
  func int8ScalesArePerOutputChannelAndExact(transB: Bool) throws {
    let channels = 4, inner = 256
    var values = [Float](repeating: 0, count: channels * inner)
    let q = seededFloats(channels * inner, seed: 9).map { ($0 * 127).rounded() }
    for c in 0..<channels {
      for i in 0..<inner {
        let index = transB ? c * inner + i : i * channels + c  // [N, K] or [K, N]
        values[index] = (i == 0 ? 127 : i == 1 ? -127 : q[c * inner + i]) * Float(sign: .plus, exponent: -(c + 3), significand: 1)
      }
    }
    let shape = transB ? [channels, inner] : [inner, channels]
    let decoded = try decodedWeight(try gemmModel(Tensor(floats: values, shape: shape), transB: transB), TMFWeightOptions(encoding: .int8))
    #expect(decoded == values)
  }

  /// Weights taking at most k distinct (dyadic) values are stored exactly by a k-centroid codebook.
  @Test(arguments: [16, 20, 256])
  func aCodebookWithAtMostKDistinctValuesIsExact(size: Int) throws {
    let levels = (0..<16).map { Float($0 - 8) / 8 }
    let values = seededFloats(32 * 64, seed: 5).map { levels[min(15, Int(($0 + 1) * 8))] }
    let decoded = try decodedWeight(
      try gemmModel(Tensor(floats: values, shape: [32, 64]), transB: true), TMFWeightOptions(encoding: .codebook, codebookSize: size))
    #expect(decoded == values)
  }

  @Test func smallTensorsAndBiasesStayFloat32() throws {
    let model = try ONNXImporter.load(path: TestEnvironment.fixture("resnet_bottleneck.onnx"))
    let dir = try TestEnvironment.makeTemporaryDirectory()
    let summary = try TMFWriter.write(model, to: dir.appendingPathComponent("m.tmf").path, weights: TMFWeightOptions(encoding: .int8))
    #expect(!summary.encoded.isEmpty)
    for t in summary.encoded {
      #expect(t.shape.reduce(1, *) >= 1024 && t.shape.count == 4, "\(t.name) \(t.shape)")
    }
  }

  @Test func optimizeReportsEncodedTensorsAndTheOutputError() throws {
    let dir = try TestEnvironment.makeTemporaryDirectory()
    let out = dir.appendingPathComponent("out.tmf").path
    let source = TestEnvironment.fixture("resnet_bottleneck.onnx")
    let result = try runRebirth(["optimize", source, out, "--weights", "int8", "--verify"])
    #expect(result.status == 0, "stderr: \(result.stderr)")
    #expect(result.stdout.contains("weights: int8, 3 tensors encoded"), "\(result.stdout)")
    #expect(result.stdout.contains("int8     [16,16,3,3]"), "\(result.stdout)")
    #expect(result.stdout.contains("output error (--verify): "))
    let json = try runRebirth(["optimize", source, out, "--weights", "codebook", "--codebook-size", "16", "--format", "json"])
    #expect(json.stdout.contains("\"relativeError\""), "\(json.stdout)")
    #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["out.tmf"])
    let verify = try runRebirth(["verify", source, out, "--tolerance", "0.5"])
    #expect(verify.status == 0, "\(verify.stdout) \(verify.stderr)")
    let bench = try runRebirth(["bench", out, "--load-only", "--format", "json"])
    #expect(bench.status == 0 && bench.stdout.contains("\"load_ms\""), "\(bench.stdout) \(bench.stderr)")
    let onnx = try runRebirth(["optimize", source, dir.appendingPathComponent("out.onnx").path, "--weights", "int8"])
    #expect(onnx.status == 2 && onnx.stderr.contains("applies to .tmf output only"), "\(onnx.stderr)")
  }
}
