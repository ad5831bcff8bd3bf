import Foundation
import Graph
import Testing

@testable import Runtime

/// Runs one `com.microsoft` node on graph inputs `x0`, `x1`, … (nil omits a slot).
private func runContrib(
  _ opType: String, _ inputs: [NDArray?], attributes: [Attribute] = [], outputs: Int = 1
) throws -> NDArray {
  var g = Graph(name: opType)
  var feeds: [String: NDArray] = [:]
  var ids: [ValueID?] = []
  for (i, x) in inputs.enumerated() {
    guard let x else {
      ids.append(nil)
      continue
    }
    ids.append(try g.addInput(name: "x\(i)", type: nil))
    feeds["x\(i)"] = x
  }
  let names = (0..<outputs).map { "y\($0)" }
  let node = try g.addNode(
    opType: opType, domain: OpType.Contrib.domain, name: "n", inputs: ids, outputs: names, attributes: attributes)
  for output in g[node].outputs { g.addOutput(output!) }
  let session = try Session(graph: g, opset: 17, options: SessionOptions(threadCount: 1))
  return try session.run(feeds, fetching: names)[0]
}

@Suite struct ContribKernelTests {
  /// Attention against a loop-by-loop evaluation of its definition: two heads, a bias, a scale
  /// attribute and an attention_bias broadcast over the heads.
  @Test func attentionMatchesItsDefinition() throws {
    let (b, s, nin, heads, d) = (2, 3, 4, 2, 3)
    let n = heads * d
    let x = random([b, s, nin], seed: 1), w = random([nin, 3 * n], seed: 2), bias = random([3 * n], seed: 3)
    let mask = random([b, 1, s, s], seed: 4)
    let y = try runContrib(
      OpType.Contrib.attention, [x, w, bias, nil, nil, mask],
      attributes: [Attribute("num_heads", .int(2)), Attribute("scale", .float(0.3))])
    let (xs, ws, bs, ms) = (
      x.scalars(as: Float.self), w.scalars(as: Float.self), bias.scalars(as: Float.self), mask.scalars(as: Float.self)
    )
    // qkv[b][t][c] = Σ_i x[b][t][i]·w[i][c] + bias[c]
    func qkv(_ bi: Int, _ t: Int, _ c: Int) -> Double {
      (0..<nin).reduce(Double(bs[c])) { $0 + Double(xs[(bi * s + t) * nin + $1]) * Double(ws[$1 * 3 * n + c]) }
    }
    var expected: [Float] = []
    for bi in 0..<b {
      for t in 0..<s {
        for h in 0..<heads {
          let logits = (0..<s).map { u in
            0.3 * (0..<d).reduce(0.0) { $0 + qkv(bi, t, h * d + $1) * qkv(bi, u, n + h * d + $1) }
              + Double(ms[(bi * s + t) * s + u])
          }
          let top = logits.max()!
          let e = logits.map { exp($0 - top) }
          let p = e.map { $0 / e.reduce(0, +) }
          for j in 0..<d {
            expected.append(Float((0..<s).reduce(0.0) { $0 + p[$1] * qkv(bi, $1, 2 * n + h * d + j) }))
          }
        }
      }
    }
    expectClose(y, expected, shape: [b, s, n], tolerance: 1e-5)
  }

  /// Without `scale` it is 1/√head_size; 0 means the same, as in onnxruntime.
  @Test func defaultScale() throws {
    let x = random([1, 4, 4], seed: 5), w = random([4, 12], seed: 6)
    let plain = try runContrib(OpType.Contrib.attention, [x, w], attributes: [Attribute("num_heads", .int(2))])
    let explicit = try runContrib(
      OpType.Contrib.attention, [x, w],
      attributes: [Attribute("num_heads", .int(2)), Attribute("scale", .float(1 / Float(2).squareRoot()))])
    let zero = try runContrib(
      OpType.Contrib.attention, [x, w], attributes: [Attribute("num_heads", .int(2)), Attribute("scale", .float(0))])
    expectClose(plain, explicit)
    expectClose(plain, zero)
  }

  @Test func attentionRefusesWhatItDoesNotImplement() throws {
    let x = random([1, 2, 4], seed: 7), w = random([4, 12], seed: 8), heads = Attribute("num_heads", .int(2))
    expectRuntimeError(containing: "mask_index") {
      _ = try runContrib(OpType.Contrib.attention, [x, w, nil, NDArray([Int32(2)], shape: [1])], attributes: [heads])
    }
    expectRuntimeError(containing: "unidirectional") {
      _ = try runContrib(OpType.Contrib.attention, [x, w], attributes: [heads, Attribute("unidirectional", .int(1))])
    }
    expectRuntimeError(containing: "present") {
      _ = try runContrib(OpType.Contrib.attention, [x, w], attributes: [heads], outputs: 2)
    }
    expectRuntimeError(containing: "attention_bias") {
      _ = try runContrib(OpType.Contrib.attention, [x, w, nil, nil, nil, random([1, 1, 1, 2], seed: 9)], attributes: [heads])
    }
    expectRuntimeError(containing: "num_heads") {
      _ = try runContrib(OpType.Contrib.attention, [x, random([4, 9], seed: 9)], attributes: [heads])
    }
  }

  @Test func gelu() throws {
    let values: [Float] = [-3, -1, -0.5, 0, 0.25, 1, 2.5]
    let y = try runContrib(OpType.Contrib.gelu, [NDArray(values, shape: [7])])
    expectClose(y, values.map { 0.5 * $0 * (1 + erf($0 / Float(2).squareRoot())) }, shape: [7], tolerance: 1e-6)
  }
}
