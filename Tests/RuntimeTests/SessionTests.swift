import Foundation
import Graph
import Testing

@testable import Runtime

/// x[1,1,3,3] → Conv(ones 2×2) → Relu → MaxPool(2×2) → Flatten → Gemm(w, b) → Softmax → y
private func smallNetwork() throws -> Graph {
  var g = Graph(name: "net")
  let x = try g.addInput(name: "x", type: .tensor(.float, shape: [.param("N"), .value(1), .value(3), .value(3)]))
  let w = try g.addInitializer(name: "w", Tensor(floats: [1, 1, 1, 1], shape: [1, 1, 2, 2]))
  let fcW = try g.addInitializer(name: "fc_w", Tensor(floats: [0.1, 0.05], shape: [1, 2]))
  let fcB = try g.addInitializer(name: "fc_b", Tensor(floats: [0, 0], shape: [2]))
  let conv = try g.addNode(opType: "Conv", name: "conv", inputs: [x, w], outputs: ["c"])
  let relu = try g.addNode(opType: "Relu", name: "relu", inputs: [g[conv].outputs[0]], outputs: ["r"])
  let pool = try g.addNode(
    opType: "MaxPool", name: "pool", inputs: [g[relu].outputs[0]], outputs: ["p"],
    attributes: [Attribute("kernel_shape", .ints([2, 2]))])
  let flat = try g.addNode(opType: "Flatten", name: "flat", inputs: [g[pool].outputs[0]], outputs: ["f"])
  let fc = try g.addNode(opType: "Gemm", name: "fc", inputs: [g[flat].outputs[0], fcW, fcB], outputs: ["logits"])
  let softmax = try g.addNode(opType: "Softmax", name: "softmax", inputs: [g[fc].outputs[0]], outputs: ["y"])
  g.addOutput(g[softmax].outputs[0]!)
  return g
}

@Suite struct SessionTests {
  @Test func endToEndSmallNetwork() throws {
    var model = Model(graph: try smallNetwork())
    model.opsetImports = [OpsetImport(domain: "", version: 17)]
    let session = try Session(model: model, options: SessionOptions(threadCount: 1))
    #expect(session.inputNames == ["x"] && session.outputNames == ["y"])
    // Conv → [8, 12, 20, 24]; max 24; logits [2.4, 1.2]; softmax.
    let out = try session.run(["x": iota([1, 1, 3, 3])])
    let e = Float(exp(1.2))
    expectClose(out["y"]!, [e / (e + 1), 1 / (e + 1)], shape: [1, 2])
    // A batch of two with a symbolic batch dimension.
    let batch = NDArray(
      iota([1, 1, 3, 3]).scalars(as: Float.self) + [Float](repeating: 0, count: 9), shape: [2, 1, 3, 3])
    expectClose(try session.run(["x": batch])["y"]!, [e / (e + 1), 1 / (e + 1), 0.5, 0.5], shape: [2, 2])
  }

  @Test func fetchesIntermediateValues() throws {
    let session = try Session(graph: try smallNetwork(), opset: 17, options: SessionOptions(threadCount: 1))
    let values = try session.run(["x": iota([1, 1, 3, 3])], fetching: ["c", "logits"])
    expectClose(values[0], [8, 12, 20, 24], shape: [1, 1, 2, 2])
    expectClose(values[1], [2.4, 1.2], shape: [1, 2])
    expectRuntimeError(containing: "no value named 'nope'") { _ = try session.run([:], fetching: ["nope"]) }
  }

  @Test func scheduleFreesValuesAfterTheirLastUse() throws {
    let session = try Session(graph: try smallNetwork(), opset: 17, options: SessionOptions(threadCount: 1))
    let compiled = session.compiled
    let y = compiled.slot(named: "y")!
    let schedule = compiled.schedule(fetch: [y])
    #expect(schedule.count == 6)
    // Each intermediate is released by the step that reads it last; the output never is.
    let released = schedule.flatMap(\.release).map { compiled.slotNames[$0] }
    for name in ["c", "r", "p", "f", "logits", "x", "w"] { #expect(released.contains(name), "\(name)") }
    #expect(!released.contains("y"))
    #expect(schedule[1].release.map { compiled.slotNames[$0] } == ["c"])
    // Fetching only "r" runs the first two nodes.
    #expect(compiled.schedule(fetch: [compiled.slot(named: "r")!]).count == 2)
  }

  @Test func feedsAreChecked() throws {
    let session = try Session(graph: try smallNetwork(), opset: 17, options: SessionOptions(threadCount: 1))
    expectRuntimeError(containing: "graph input 'x' is not fed") { _ = try session.run([:]) }
    expectRuntimeError(containing: "'z' is not an input of the graph") {
      _ = try session.run(["x": iota([1, 1, 3, 3]), "z": iota([1])])
    }
    expectRuntimeError(containing: "input 'x' expects float, got int64") {
      _ = try session.run(["x": NDArray([Int64](repeating: 0, count: 9), shape: [1, 1, 3, 3])])
    }
    expectRuntimeError(containing: "input 'x' expects shape [N, 1, 3, 3], got [1, 1, 4, 4]") {
      _ = try session.run(["x": iota([1, 1, 4, 4])])
    }
  }

  @Test func unsupportedOperatorIsNamed() throws {
    var g = Graph()
    let x = try g.addInput(name: "x", type: nil)
    let n = try g.addNode(opType: "NonMaxSuppression", name: "nms", inputs: [x], outputs: ["y"])
    g.addOutput(g[n].outputs[0]!)
    #expect(throws: RuntimeError.self) { try Session(graph: g, opset: 17) }
    do {
      _ = try Session(graph: g, opset: 17)
    } catch {
      #expect(error.description == "unsupported operator 'NonMaxSuppression' (node 'nms')")
      #expect(error.kind == .unsupportedOperator)
    }
  }

  @Test func customDomainAndUnnamedNodes() throws {
    var g = Graph()
    let x = try g.addInput(name: "x", type: nil)
    let n = try g.addNode(opType: "FusedConv", domain: "com.microsoft", inputs: [x], outputs: ["out"])
    g.addOutput(g[n].outputs[0]!)
    expectRuntimeError(containing: "unsupported operator 'com.microsoft.FusedConv' (node producing 'out')") {
      _ = try Session(graph: g, opset: 17)
    }
  }

  @Test func customKernelsCanBeRegistered() throws {
    struct Double: Kernel {
      init(_ builder: KernelBuilder) throws {}
      func run(_ context: KernelContext) throws -> [NDArray] {
        let x = try context.input(0, .float)
        return [NDArray(x.scalars(as: Float.self).map { $0 * 2 }, shape: x.shape)]
      }
    }
    var registry = KernelRegistry.standard
    registry.register(Double.self, for: "Double", domain: "test")
    var g = Graph()
    let x = try g.addInput(name: "x", type: nil)
    let n = try g.addNode(opType: "Double", domain: "test", inputs: [x], outputs: ["y"])
    g.addOutput(g[n].outputs[0]!)
    let session = try Session(graph: g, opset: 17, options: SessionOptions(threadCount: 1, registry: registry))
    expectClose(try session.run(["x": floats([1, 2], [2])])["y"]!, [2, 4], shape: [2])
    #expect(KernelRegistry.standard.operators.contains("Conv"))
  }

  @Test func inputDefaultsAndFloat16() throws {
    // A float16 initializer is computed in float32; an output declared float16 comes back as float16.
    var g = Graph()
    let half = Tensor(dtype: .float16, shape: [2], storage: .copying([Half(1.5).bitPattern, Half(-2).bitPattern]))!
    let x = try g.addInput(name: "x", type: .tensor(.float16, shape: [.value(2)]), default: half)
    let w = try g.addInitializer(name: "w", half)
    let n = try g.addNode(opType: "Mul", inputs: [x, w], outputs: ["y"])
    g.addOutput(g[n].outputs[0]!)
    g.updateValue(g[n].outputs[0]!) { $0.type = .tensor(.float16, shape: [.value(2)]) }
    let session = try Session(graph: g, opset: 17, options: SessionOptions(threadCount: 1))
    #expect(session.requiredInputNames.isEmpty)
    let y = try session.run([:])["y"]!
    #expect(y.dtype == .float16)
    #expect(y.scalars(as: Half.self).map(\.floatValue) == [2.25, 4])
    // Fed as float32 instead.
    let fed = try session.run(["x": floats([2, 3], [2])])["y"]!
    #expect(fed.scalars(as: Half.self).map(\.floatValue) == [3, -6])
  }

  @Test func evaluatesOneNodeForConstantFolding() throws {
    var g = Graph()
    let a = try g.addInput(name: "a", type: nil)
    let b = try g.addInitializer(name: "b", Tensor(floats: [1, 2], shape: [2]))
    let n = try g.addNode(opType: "Add", inputs: [a, b], outputs: ["c"])
    let out = try KernelRegistry.standard.evaluate(
      n, in: g, opset: 17, inputs: [floats([3, 4], [2]), floats([1, 2], [2])])
    expectClose(out[0], [4, 6], shape: [2])
    // An unnamed node is named by what it produces.
    expectRuntimeError(containing: "node producing 'c' (Add): cannot broadcast [3] with [2]") {
      _ = try KernelRegistry.standard.evaluate(
        n, in: g, opset: 17, inputs: [floats([1, 2, 3], [3]), floats([1, 2], [2])])
    }
  }

  @Test func cyclesAreErrors() throws {
    var g = Graph()
    let x = try g.addInput(name: "x", type: nil)
    let a = try g.addNode(opType: "Relu", name: "a", inputs: [x], outputs: ["a"])
    let b = try g.addNode(opType: "Relu", name: "b", inputs: [g[a].outputs[0]], outputs: ["b"])
    g.setInput(0, of: a, to: g[b].outputs[0])
    g.addOutput(g[b].outputs[0]!)
    expectRuntimeError(containing: "cycle") { _ = try Session(graph: g, opset: 17) }
  }
}

@Suite struct NDArrayTests {
  @Test func halfConversionRoundTrips() {
    for v: Float in [0, -0, 1, -2.5, 65504, 6.1035156e-05, 5.9604645e-08, 0.1, .infinity, -.infinity] {
      let h = Half(v)
      #expect(Half(h.floatValue) == h)
      if v == 0.1 { #expect(abs(h.floatValue - 0.1) < 1e-4) } else { #expect(h.floatValue == v) }
    }
    #expect(Half(1).bitPattern == 0x3c00)
    #expect(Half(65520).bitPattern == 0x7c00)  // rounds up to infinity
    #expect(Half(Float.nan).floatValue.isNaN)
    #expect(Half(bitPattern: 0x0001).floatValue == 5.9604645e-08)
    #expect(Half(1 + 1.0 / 2048).bitPattern == 0x3c00)  // halfway: to even
    #expect(Half(1 + 3.0 / 2048).bitPattern == 0x3c02)
  }

  @Test func wrapsGraphConstantsWithoutCopying() throws {
    let t = Tensor(floats: [1, 2, 3], shape: [3])
    let a = try NDArray(t)
    guard case .raw(let storage) = t.payload else { return }
    a.withUnsafeBytes { #expect($0.baseAddress == storage.bytes.baseAddress) }
    // Writing copies first: the constant is untouched.
    var b = a
    b.withUnsafeMutableBufferPointer(of: Float.self) { $0[0] = 9 }
    #expect(a.scalars(as: Float.self) == [1, 2, 3])
    #expect(b.scalars(as: Float.self) == [9, 2, 3])
    #expect(t.floats == [1, 2, 3])
  }

  @Test func boolBytesAreNormalized() throws {
    let t = Tensor(dtype: .bool, shape: [3], storage: .copying([UInt8(0), 1, 7]))!
    #expect(try NDArray(t).scalars(as: Bool.self) == [false, true, true])
    #expect(throws: RuntimeError.self) { try NDArray(Tensor(strings: [[65]], shape: [1])!) }
  }

  @Test func roundTripsToTensor() throws {
    let a = NDArray([Int64(4), 5], shape: [2, 1])
    let t = a.toTensor()
    #expect(t.dtype == .int64 && t.shape == [2, 1] && t.int64s == [4, 5])
    #expect(a.slice(elements: 1..<2, shape: [1]).scalars(as: Int64.self) == [5])
  }
}
