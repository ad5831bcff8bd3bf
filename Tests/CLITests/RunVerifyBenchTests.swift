import Exporters
import Foundation
import Graph
import GraphTesting
import Importers
import Runtime
import Testing

@testable import rebirth

/// `rebirth run`, `verify` and `bench` on fixtures the runtime supports.
@Suite struct RunVerifyBenchTests {
  private func writeNPY(_ array: NDArray, _ path: URL) throws {
    try Data(try NumPyFile.encode(array)).write(to: path)
  }

  /// Deterministic float32 values in [-1, 1).
  private func values(_ shape: [Int], seed: UInt64 = 1) -> NDArray {
    var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
    let n = shape.reduce(1, *)
    let v = (0..<n).map { _ -> Float in
      state ^= state << 13
      state ^= state >> 7
      state ^= state << 17
      return Float(state >> 40) / Float(1 << 23) - 1
    }
    return NDArray(v, shape: shape)
  }

  /// What the runtime computes in-process for `fixture`.
  private func expected(_ fixture: String, _ feeds: [String: NDArray]) throws -> [String: NDArray] {
    let model = try ONNXImporter.load(path: TestEnvironment.fixture(fixture))
    return try Session(model: model, options: SessionOptions(threadCount: 1)).run(feeds)
  }

  private func json(_ text: String) throws -> [String: Any] {
    try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] ?? [:]
  }

  /// `fixture` with one element of its first float initializer changed by `delta`, written to `path`.
  private func withOneWeightChanged(_ fixture: String, by delta: Float, to path: String) throws {
    var model = try ONNXImporter.load(path: TestEnvironment.fixture(fixture))
    let g = model.graph
    let weight = try #require(g.initializers.first { g.constant($0)?.dtype == .float && (g.constant($0)?.elementCount ?? 0) > 1 })
    let tensor = try #require(g.constant(weight))
    var floats = try #require(tensor.floats)
    floats[0] += delta
    model.graph.setConstant(weight, Tensor(floats: floats, shape: tensor.shape))
    try ONNXExporter.write(model, to: path)
  }

  // MARK: run

  @Test func runWritesEachOutputAsNpyWithASanitizedName() throws {
    let dir = try TestEnvironment.makeTemporaryDirectory()
    let x = values([1, 3, 64, 64])
    let input = dir.appendingPathComponent("data.npy")
    try writeNPY(x, input)
    let out = dir.appendingPathComponent("out").path
    let result = try runRebirth([
      "run", TestEnvironment.fixture("googlenet_stem.onnx"), "--input", "data=\(input.path)", "--output", out,
      "--threads", "1",
    ])
    #expect(result.status == 0, "stderr: \(result.stderr)")
    // The output 'pool2/3x3_s2' goes to pool2_3x3_s2.npy.
    #expect(try FileManager.default.contentsOfDirectory(atPath: out) == ["pool2_3x3_s2.npy"])
    let written = try NumPyFile.read(path: out + "/pool2_3x3_s2.npy")
    let reference = try #require(try expected("googlenet_stem.onnx", ["data": x])["pool2/3x3_s2"])
    #expect(written.shape == [1, 48, 8, 8])
    #expect(written.scalars(as: Float.self) == reference.scalars(as: Float.self))
  }

  @Test func runReadsNpzInputsAndWritesNpzOutputs() throws {
    let dir = try TestEnvironment.makeTemporaryDirectory()
    let x = values([4, 64], seed: 7)
    let archive = dir.appendingPathComponent("in.npz")
    try Data(try NumPyArchive.encode([("x", x)], compression: .deflated)).write(to: archive)
    let out = dir.appendingPathComponent("out.npz").path
    let result = try runRebirth(["run", TestEnvironment.fixture("mlp.onnx"), "--inputs", archive.path, "--output", out])
    #expect(result.status == 0, "stderr: \(result.stderr)")
    let arrays = try NumPyArchive.read(path: out)
    #expect(arrays.map(\.name) == ["logits"])
    let reference = try #require(try expected("mlp.onnx", ["x": x])["logits"])
    let got = arrays[0].array.scalars(as: Float.self), want = reference.scalars(as: Float.self)
    // Other thread counts may sum in another order: allow float rounding.
    let scale = want.map(abs).max() ?? 1
    #expect(zip(got, want).allSatisfy { abs($0 - $1) <= 1e-5 * scale })
  }

  @Test func runDefaultsToTheCurrentDirectoryAndAcceptsABarePathForOneInput() throws {
    let dir = try TestEnvironment.makeTemporaryDirectory()
    try writeNPY(values([4, 64]), dir.appendingPathComponent("x.npy"))
    let process = Process()
    process.executableURL = TestEnvironment.rebirthExecutable
    process.arguments = ["run", TestEnvironment.fixture("mlp.onnx"), "--input", "x.npy"]
    process.currentDirectoryURL = dir
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    try process.run()
    process.waitUntilExit()
    #expect(process.terminationStatus == 0)
    #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("logits.npy").path))
  }

  @Test func runRefusesMissingAndMismatchedInputsOnOneLine() throws {
    let dir = try TestEnvironment.makeTemporaryDirectory()
    let model = TestEnvironment.fixture("mlp.onnx")
    let wrongType = dir.appendingPathComponent("int.npy")
    try writeNPY(NDArray([Int64](repeating: 1, count: 256), shape: [4, 64]), wrongType)
    let wrongShape = dir.appendingPathComponent("short.npy")
    try writeNPY(values([2, 64]), wrongShape)
    let fortran = dir.appendingPathComponent("fortran.npy")
    let header = "{'descr': '<f4', 'fortran_order': True, 'shape': (4, 64), }"
    try Data([0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(header.utf8.count + 1), 0] + Array(header.utf8) + [0x0A]).write(to: fortran)
    let out = dir.appendingPathComponent("out").path
    let cases: [([String], String)] = [
      ([], "input 'x' (float[4,64]) is not given"),
      (["--input", "x=\(wrongType.path)"], "input 'x' expects float[4,64], got int64[4,64]"),
      (["--input", "x=\(wrongShape.path)"], "input 'x' expects float[4,64], got float[2,64]"),
      (["--input", "y=\(wrongShape.path)"], "'y' is not an input of"),
      (["--input", "x=\(fortran.path)"], "Fortran-order arrays are not supported"),
      (["--input", "x=\(dir.path)/missing.npy"], "missing.npy: no such file"),
    ]
    for (arguments, fragment) in cases {
      let result = try runRebirth(["run", model, "--output", out] + arguments)
      #expect(result.status == 1, "\(arguments)")
      #expect(result.stderr.contains(fragment), "stderr was: \(result.stderr)")
      #expect(result.stderr.hasPrefix("rebirth: ") && result.stderr.filter(\.isNewline).count == 1)
    }
    #expect(!FileManager.default.fileExists(atPath: out + "/logits.npy"))
  }

  @Test func runListsTheOperatorsTheRuntimeImplements() throws {
    let result = try runRebirth(["run", "--list-ops"])
    #expect(result.status == 0)
    let ops = result.stdout.split(separator: "\n").map(String.init)
    #expect(ops.contains("Conv") && ops.contains("Gemm") && ops.contains("Relu"))
    #expect(ops == KernelRegistry.standard.operators)
  }

  // MARK: verify

  @Test(arguments: ["mlp.onnx", "googlenet_stem.onnx", "inception_block.onnx"])
  func verifyOfAModelAgainstItselfIsExact(fixture: String) throws {
    let path = TestEnvironment.fixture(fixture)
    let result = try runRebirth(["verify", path, path, "--format", "json", "--seed", "3"])
    #expect(result.status == 0, "stderr: \(result.stderr)")
    let report = try json(result.stdout)
    #expect(report["passed"] as? Bool == true)
    let outputs = try #require(report["outputs"] as? [[String: Any]])
    #expect(!outputs.isEmpty)
    for output in outputs {
      #expect(output["max_abs_error"] as? Double == 0)
      #expect(output["max_rel_error"] as? Double == 0)
      #expect(output["cosine_similarity"] as? Double == 1)
    }
    let text = try runRebirth(["verify", path, path])
    #expect(text.status == 0)
    #expect(text.stdout.contains("passed: every output within tolerance 0.0001"))
  }

  @Test func verifyReportsArgmaxAgreementForClassifiers() throws {
    let path = TestEnvironment.fixture("mlp.onnx")
    let result = try runRebirth(["verify", path, path, "--format", "json"])
    let output = try #require((try json(result.stdout)["outputs"] as? [[String: Any]])?.first)
    #expect(output["argmax_rows"] as? Int == 4 && output["argmax_matches"] as? Int == 4)
    #expect(output["argmax_agreement"] as? Double == 1)
  }

  @Test func verifyFailsPastTheTolerance() throws {
    let dir = try TestEnvironment.makeTemporaryDirectory()
    let changed = dir.appendingPathComponent("changed.onnx").path
    try withOneWeightChanged("mlp.onnx", by: 0.5, to: changed)
    let original = TestEnvironment.fixture("mlp.onnx")
    let result = try runRebirth(["verify", original, changed])
    #expect(result.status == 1)
    #expect(result.stdout.contains("FAIL"))
    #expect(result.stderr.hasPrefix("rebirth: verify failed: output 'logits': max rel error "))
    let report = try json(try runRebirth(["verify", original, changed, "--format", "json"]).stdout)
    #expect(report["passed"] as? Bool == false)
    let output = try #require((report["outputs"] as? [[String: Any]])?.first)
    #expect((output["max_rel_error"] as? Double ?? 0) > 1e-4)
    // A loose enough tolerance passes.
    #expect(try runRebirth(["verify", original, changed, "--tolerance", "10"]).status == 0)
  }

  @Test func verifyComparesNamedIntermediateTensors() throws {
    let dir = try TestEnvironment.makeTemporaryDirectory()
    let changed = dir.appendingPathComponent("changed.onnx").path
    try withOneWeightChanged("mlp.onnx", by: 0.5, to: changed)
    let original = TestEnvironment.fixture("mlp.onnx")
    let x = values([4, 64], seed: 9)
    let archive = dir.appendingPathComponent("x.npz")
    try Data(try NumPyArchive.encode([("x", x)])).write(to: archive)
    let result = try runRebirth(
      ["verify", original, changed, "--inputs", archive.path, "--tensor", "fc1", "--tensor", "relu1", "--tolerance", "10",
       "--format", "json"])
    #expect(result.status == 0, "stderr: \(result.stderr)")
    let tensors = try #require(try json(result.stdout)["tensors"] as? [[String: Any]])
    #expect(tensors.map { $0["name"] as? String } == ["fc1", "relu1"])
    // Independently: both models in-process on the same input, ‖a − b‖ / ‖a‖ of each tensor.
    let a = try Session(model: try ONNXImporter.load(path: original), options: SessionOptions(threadCount: 1))
    let b = try Session(model: try ONNXImporter.load(path: changed), options: SessionOptions(threadCount: 1))
    let va = try a.run(["x": x], fetching: ["fc1", "relu1"]), vb = try b.run(["x": x], fetching: ["fc1", "relu1"])
    for (i, t) in tensors.enumerated() {
      let p = va[i].scalars(as: Float.self).map(Double.init), q = vb[i].scalars(as: Float.self).map(Double.init)
      let difference = zip(p, q).reduce(0.0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }.squareRoot()
      let reference = p.reduce(0.0) { $0 + $1 * $1 }.squareRoot()
      let reported = try #require(t["rel_l2_error"] as? Double)
      #expect(reported > 0)
      #expect(abs(reported - difference / reference) <= 1e-9 * max(1, reported), "\(t)")
      #expect(abs((t["l2_reference"] as? Double ?? 0) - reference) <= 1e-9 * reference)
    }
    // The text form prints a second table; a model against itself has zero tensor errors.
    let text = try runRebirth(["verify", original, original, "--tensor", "fc1"])
    #expect(text.status == 0)
    #expect(text.stdout.contains("tensors (reported, not checked against the tolerance):"))
    let same = try #require(try json(try runRebirth(["verify", original, original, "--tensor", "bn1", "--format", "json"]).stdout)["tensors"] as? [[String: Any]])
    #expect(same.first?["rel_l2_error"] as? Double == 0)
    // A name one model lacks is a usage error naming the file.
    let missing = try runRebirth(["verify", original, changed, "--tensor", "nowhere"])
    #expect(missing.status != 0)
    #expect(missing.stderr.contains("--tensor nowhere: \(original) has no value named 'nowhere'"))
  }

  @Test func verifyOfModelsWithDifferentOutputsIsAnError() throws {
    let result = try runRebirth(["verify", TestEnvironment.fixture("mlp.onnx"), TestEnvironment.fixture("googlenet_stem.onnx")])
    #expect(result.status == 1)
    #expect(result.stderr.contains("have different outputs: only A has 'logits'; only B has 'pool2/3x3_s2'"))
  }

  @Test func verifyTakesSymbolicDimsAndGivenInputs() throws {
    let path = TestEnvironment.fixture("symbolic_batch.onnx")
    let result = try runRebirth(["verify", path, path, "--dim", "N=3", "--format", "json"])
    #expect(result.status == 0, "stderr: \(result.stderr)")
    let inputs = try #require(try json(result.stdout)["inputs"] as? [[String: Any]])
    #expect(inputs.first?["shape"] as? [Int] == [3, 3, 8, 8])
    let dir = try TestEnvironment.makeTemporaryDirectory()
    let archive = dir.appendingPathComponent("in.npz")
    try Data(try NumPyArchive.encode([("images", values([2, 3, 8, 8]))])).write(to: archive)
    let given = try runRebirth(["verify", path, path, "--inputs", archive.path])
    #expect(given.status == 0, "stderr: \(given.stderr)")
    #expect(given.stdout.contains("inputs (given): images float[2,3,8,8]"))
  }

  @Test(arguments: [
    (["--tolerance=-1"], "--tolerance must be a non-negative number"),
    (["--threads", "0"], "--threads must be at least 1"),
    (["--dim", "N"], "--dim N: expected NAME=SIZE"),
    (["--dim", "M=2"], "--dim M: no input has a symbolic dim 'M'"),
    (["--format", "xml"], "xml"),
  ])
  func verifyUsageErrorsExitWithTwo(arguments: [String], fragment: String) throws {
    let path = TestEnvironment.fixture("symbolic_batch.onnx")
    let result = try runRebirth(["verify", path, path] + arguments)
    #expect(result.status == 2)
    #expect(result.stderr.contains(fragment), "stderr was: \(result.stderr)")
  }

  // MARK: bench

  @Test func benchReportsLatencyPercentilesAndPeakMemory() throws {
    let result = try runRebirth([
      "bench", TestEnvironment.fixture("inception_block.onnx"), "--runs", "5", "--warmup", "1", "--threads", "1",
      "--format", "json",
    ])
    #expect(result.status == 0, "stderr: \(result.stderr)")
    let report = try json(result.stdout)
    let min = try #require(report["min_ms"] as? Double)
    let p50 = try #require(report["p50_ms"] as? Double)
    let p90 = try #require(report["p90_ms"] as? Double)
    let rss = try #require(report["peak_rss_bytes"] as? Int)
    let cpu = try #require(report["cpu_p50_ms"] as? Double)
    #expect(min > 0 && min <= p50 && p50 <= p90)
    // One thread: the running thread's CPU time, which cannot exceed the run's wall time by more
    // than clock granularity (the process's could: OpenBLAS's idle pool spins after it loads).
    #expect(report["cpu_scope"] as? String == "thread")
    let maxWall = try #require(report["max_ms"] as? Double)
    #expect(cpu > 0 && cpu <= maxWall + 0.05)
    #expect(rss > 1_000_000)
    #expect(report["runs"] as? Int == 5 && report["threads"] as? Int == 1)
    let text = try runRebirth(["bench", TestEnvironment.fixture("mlp.onnx"), "--runs", "3"])
    #expect(text.status == 0)
    #expect(text.stdout.contains("p50") && text.stdout.contains("peak memory"))
  }

  @Test func benchRefusesBadCounts() throws {
    let result = try runRebirth(["bench", TestEnvironment.fixture("mlp.onnx"), "--runs", "0"])
    #expect(result.status == 2)
    #expect(result.stderr.contains("--runs must be at least 1"))
  }

  @Test func runtimeErrorsNameTheModel() throws {
    // lstm.onnx or another fixture may gain kernels; a model with an operator nobody implements
    // is made here: a node of a custom domain.
    var g = Graph(name: "custom")
    let x = try g.addInput(name: "x", type: .tensor(.float, shape: [.value(2)]))
    let node = try g.addNode(opType: "Frobnicate", domain: "example.custom", name: "f", inputs: [x], outputs: ["y"])
    g.addOutput(g[node].outputs[0]!)
    var model = Model(graph: g)
    model.opsetImports = [OpsetImport(domain: "", version: 17), OpsetImport(domain: "example.custom", version: 1)]
    let dir = try TestEnvironment.makeTemporaryDirectory()
    let path = dir.appendingPathComponent("custom.onnx").path
    try ONNXExporter.write(model, to: path)
    let result = try runRebirth(["verify", path, path])
    #expect(result.status == 1)
    #expect(result.stderr == "rebirth: \(path): unsupported operator 'example.custom.Frobnicate' (node 'f')\n")
  }
}

/// The made-up inputs of `verify` and `bench` follow the rules of Tests/conformance/inputs.py.
@Suite struct RandomInputsTests {
  @Test func integerInputsStayInTheirValidRange() throws {
    var g = Graph(name: "ranges")
    let data = try g.addInput(name: "data", type: .tensor(.float, shape: [.param("N"), .value(4)]))
    let table = try g.addInitializer(name: "table", Tensor(floats: [Float](repeating: 1, count: 14), shape: [7, 2]))
    let idx = try g.addInput(name: "idx", type: .tensor(.int64, shape: [.value(200)]))
    let rows = try g.addInput(name: "rows", type: .tensor(.int32, shape: [.value(100)]))
    let columns = try g.addInput(name: "columns", type: .tensor(.int64, shape: [.value(100)]))
    let sr = try g.addInput(name: "SR", type: .tensor(.int64, shape: []))
    let small = try g.addInput(name: "k", type: .tensor(.uint8, shape: [.value(100)]))
    let flags = try g.addInput(name: "flags", type: .tensor(.bool, shape: [.value(100)]))
    let half = try g.addInput(name: "h", type: .tensor(.float16, shape: [.unknown]))
    let relu = try g.addNode(opType: "Relu", inputs: [data], outputs: ["r"])
    let nodes = [
      try g.addNode(opType: "Gather", inputs: [table, idx], outputs: ["t"]),
      try g.addNode(opType: "Gather", inputs: [data, rows], outputs: ["d"]),
      // The data of this one is not an input: its size comes from shape inference.
      try g.addNode(
        opType: "Gather", inputs: [g[relu].outputs[0], columns], outputs: ["c"], attributes: [Attribute("axis", .int(-1))]),
      try g.addNode(opType: "Identity", inputs: [sr], outputs: ["s"]),
      try g.addNode(opType: "Identity", inputs: [small], outputs: ["k2"]),
      try g.addNode(opType: "Identity", inputs: [flags], outputs: ["f2"]),
      try g.addNode(opType: "Identity", inputs: [half], outputs: ["h2"]),
    ]
    for n in nodes { g.addOutput(g[n].outputs[0]!) }
    var model = Model(graph: g)
    model.opsetImports = [OpsetImport(domain: "", version: 17)]
    let feeds = try RandomInputs(model: model, dims: ["N": 3], seed: 5).make()
    #expect(feeds["data"]?.shape == [3, 4])
    let indices = try #require(feeds["idx"]).scalars(as: Int64.self)
    #expect(indices.allSatisfy { (0..<7).contains($0) } && indices.max() == 6)
    let rowIndices = try #require(feeds["rows"]).scalars(as: Int32.self)
    #expect(rowIndices.allSatisfy { (0..<3).contains($0) } && rowIndices.max() == 2)
    let columnIndices = try #require(feeds["columns"]).scalars(as: Int64.self)
    #expect(columnIndices.allSatisfy { (0..<4).contains($0) } && columnIndices.max() == 3)
    #expect(feeds["SR"]?.scalars(as: Int64.self) == [16000])
    let k = try #require(feeds["k"]).scalars(as: UInt8.self)
    #expect(k.allSatisfy { $0 <= 4 } && k.max() == 4)
    let f = try #require(feeds["flags"]).scalars(as: Bool.self)
    #expect(f.contains(true) && f.contains(false))
    #expect(feeds["h"]?.dtype == .float16 && feeds["h"]?.shape == [1])
    // The same seed gives the same values; another seed other values.
    let again = try RandomInputs(model: model, dims: ["N": 3], seed: 5).make()
    #expect(again["data"]?.scalars(as: Float.self) == feeds["data"]?.scalars(as: Float.self))
    let other = try RandomInputs(model: model, dims: ["N": 3], seed: 6).make()
    #expect(other["data"]?.scalars(as: Float.self) != feeds["data"]?.scalars(as: Float.self))
  }

  @Test func floatInputsAreStandardNormal() throws {
    var g = Graph(name: "normal")
    let x = try g.addInput(name: "x", type: .tensor(.float, shape: [.value(20000)]))
    let n = try g.addNode(opType: "Relu", inputs: [x], outputs: ["y"])
    g.addOutput(g[n].outputs[0]!)
    let values = try #require(try RandomInputs(model: Model(graph: g), dims: [:], seed: 0).make()["x"]).scalars(as: Float.self)
    let mean = values.reduce(0, +) / Float(values.count)
    let variance = values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Float(values.count)
    #expect(abs(mean) < 0.05 && abs(variance - 1) < 0.05)
  }

  @Test func sequenceLengthsAreFull() throws {
    var g = Graph(name: "lstm")
    let x = try g.addInput(name: "X", type: .tensor(.float, shape: [.value(6), .value(2), .value(3)]))
    let w = try g.addInitializer(name: "W", Tensor(floats: [Float](repeating: 0, count: 4 * 4 * 3), shape: [1, 16, 3]))
    let r = try g.addInitializer(name: "R", Tensor(floats: [Float](repeating: 0, count: 4 * 4 * 4), shape: [1, 16, 4]))
    let lens = try g.addInput(name: "lens", type: .tensor(.int32, shape: [.value(2)]))
    let n = try g.addNode(
      opType: "LSTM", inputs: [x, w, r, nil, lens], outputs: ["Y"], attributes: [Attribute("hidden_size", .int(4))])
    g.addOutput(g[n].outputs[0]!)
    let feeds = try RandomInputs(model: Model(graph: g), dims: [:], seed: 0).make()
    #expect(feeds["lens"]?.scalars(as: Int32.self) == [6, 6])
  }
}
