import Foundation
import Graph
import Testing

@testable import Runtime

private func logistic(_ x: Double) -> Double { 1 / (1 + exp(-x)) }

/// The inputs of a recurrent node in layout 0, as flat arrays, with a direct reference
/// implementation of the ONNX equations, one scalar at a time.
private struct RecurrentCase {
  let op: String
  let seq: Int, batch: Int, input: Int, hidden: Int, directions: Int
  var gates: Int { op == "LSTM" ? 4 : op == "GRU" ? 3 : 1 }
  var x: NDArray, w: NDArray, r: NDArray, b: NDArray?
  var lengths: [Int32]?
  var h0: NDArray?, c0: NDArray?, p: NDArray?
  var linearBeforeReset = false

  init(_ op: String, seq: Int, batch: Int, input: Int, hidden: Int, directions: Int, seed: UInt64) {
    self.op = op
    (self.seq, self.batch, self.input, self.hidden, self.directions) = (seq, batch, input, hidden, directions)
    let g = op == "LSTM" ? 4 : op == "GRU" ? 3 : 1
    x = random([seq, batch, input], seed: seed)
    w = random([directions, g * hidden, input], seed: seed + 1)
    r = random([directions, g * hidden, hidden], seed: seed + 2)
    b = random([directions, 2 * g * hidden], seed: seed + 3)
    h0 = random([directions, batch, hidden], seed: seed + 4)
    c0 = op == "LSTM" ? random([directions, batch, hidden], seed: seed + 5) : nil
    p = op == "LSTM" ? random([directions, 3 * hidden], seed: seed + 6) : nil
  }

  /// Inputs by slot, layout 0.
  var inputs: [NDArray?] {
    var list: [NDArray?] = [x, w, r, b, lengths.map { NDArray($0, shape: [batch]) }, h0]
    if op == "LSTM" { list += [c0, p] }
    return list
  }

  /// Y [seq, directions, batch, hidden], Y_h and Y_c [directions, batch, hidden].
  func reference() -> (y: [Float], yh: [Float], yc: [Float]) {
    let (xs, ws, rs) = (
      x.scalars(as: Float.self).map(Double.init), w.scalars(as: Float.self).map(Double.init),
      r.scalars(as: Float.self).map(Double.init)
    )
    let bs = b?.scalars(as: Float.self).map(Double.init)
    let ps = p?.scalars(as: Float.self).map(Double.init)
    let (h0s, c0s) = (h0?.scalars(as: Float.self).map(Double.init), c0?.scalars(as: Float.self).map(Double.init))
    let (n, g) = (hidden, gates)
    var y = [Float](repeating: 0, count: seq * directions * batch * n)
    var yh = [Float](repeating: 0, count: directions * batch * n)
    var yc = yh
    for d in 0..<directions {
      // Gate k, unit j: weight rows d·g·n + k·n + j.
      func wx(_ t: Int, _ bt: Int, _ k: Int, _ j: Int) -> Double {
        var sum = 0.0
        for i in 0..<input { sum += xs[(t * batch + bt) * input + i] * ws[((d * g + k) * n + j) * input + i] }
        return sum
      }
      func rh(_ h: [Double], _ k: Int, _ j: Int) -> Double {
        var sum = 0.0
        for i in 0..<n { sum += h[i] * rs[((d * g + k) * n + j) * n + i] }
        return sum
      }
      func wb(_ k: Int, _ j: Int) -> Double { bs?[d * 2 * g * n + k * n + j] ?? 0 }
      func rb(_ k: Int, _ j: Int) -> Double { bs?[d * 2 * g * n + (g + k) * n + j] ?? 0 }
      for bt in 0..<batch {
        let length = lengths.map { Int($0[bt]) } ?? seq
        var h = (0..<n).map { h0s?[(d * batch + bt) * n + $0] ?? 0 }
        var c = (0..<n).map { c0s?[(d * batch + bt) * n + $0] ?? 0 }
        let times = d == 1 ? Array((0..<length).reversed()) : Array(0..<length)
        for t in times {
          var next = [Double](repeating: 0, count: n)
          switch op {
          case "LSTM":
            func peep(_ k: Int, _ j: Int) -> Double { ps?[d * 3 * n + k * n + j] ?? 0 }
            var newC = c
            for j in 0..<n {
              let i = logistic(wx(t, bt, 0, j) + rh(h, 0, j) + peep(0, j) * c[j] + wb(0, j) + rb(0, j))
              let f = logistic(wx(t, bt, 2, j) + rh(h, 2, j) + peep(2, j) * c[j] + wb(2, j) + rb(2, j))
              let cc = tanh(wx(t, bt, 3, j) + rh(h, 3, j) + wb(3, j) + rb(3, j))
              newC[j] = f * c[j] + i * cc
              let o = logistic(wx(t, bt, 1, j) + rh(h, 1, j) + peep(1, j) * newC[j] + wb(1, j) + rb(1, j))
              next[j] = o * tanh(newC[j])
            }
            c = newC
          case "GRU":
            let z = (0..<n).map { logistic(wx(t, bt, 0, $0) + rh(h, 0, $0) + wb(0, $0) + rb(0, $0)) }
            let rg = (0..<n).map { logistic(wx(t, bt, 1, $0) + rh(h, 1, $0) + wb(1, $0) + rb(1, $0)) }
            let reset = (0..<n).map { rg[$0] * h[$0] }
            for j in 0..<n {
              let hh =
                linearBeforeReset
                ? tanh(wx(t, bt, 2, j) + rg[j] * (rh(h, 2, j) + rb(2, j)) + wb(2, j))
                : tanh(wx(t, bt, 2, j) + rh(reset, 2, j) + rb(2, j) + wb(2, j))
              next[j] = (1 - z[j]) * hh + z[j] * h[j]
            }
          default:
            for j in 0..<n { next[j] = tanh(wx(t, bt, 0, j) + rh(h, 0, j) + wb(0, j) + rb(0, j)) }
          }
          h = next
          for j in 0..<n { y[((t * directions + d) * batch + bt) * n + j] = Float(h[j]) }
        }
        if length > 0 {
          for j in 0..<n {
            yh[(d * batch + bt) * n + j] = Float(h[j])
            yc[(d * batch + bt) * n + j] = Float(c[j])
          }
        }
      }
    }
    return (y, yh, yc)
  }
}

/// [a, b, c] → [b, a, c] (layout 0 ↔ layout 1 of X, the states, and Y's leading axes).
private func recurrentSwapLeadingAxes(_ a: NDArray) -> NDArray {
  let values = a.scalars(as: Float.self)
  let (p, q) = (a.shape[0], a.shape[1])
  let inner = a.count / max(p * q, 1)
  var out = [Float](repeating: 0, count: a.count)
  for i in 0..<p {
    for j in 0..<q {
      for k in 0..<inner { out[(j * p + i) * inner + k] = values[(i * q + j) * inner + k] }
    }
  }
  return NDArray(out, shape: [q, p] + Array(a.shape[2...]))
}

/// Y [seq, directions, batch, hidden] → [batch, seq, directions, hidden].
private func recurrentBatchMajor(_ y: NDArray) -> NDArray {
  let (s, d, b, h) = (y.shape[0], y.shape[1], y.shape[2], y.shape[3])
  let values = y.scalars(as: Float.self)
  var out = [Float](repeating: 0, count: y.count)
  for t in 0..<s {
    for dd in 0..<d {
      for bb in 0..<b {
        for j in 0..<h { out[((bb * s + t) * d + dd) * h + j] = values[((t * d + dd) * b + bb) * h + j] }
      }
    }
  }
  return NDArray(out, shape: [b, s, d, h])
}

private func recurrentDirection(_ directions: Int) -> Attribute {
  .string("direction", directions == 2 ? "bidirectional" : "forward")
}

@Suite struct LSTMTests {
  @Test func oneStepByHand() throws {
    // Input, hidden and cell size 1. Gates i, o, f, c:
    //   i = σ(1·1 + 1·0.5 + 0.5·C₀)        = σ(1.75)
    //   f = σ(0 + 0 + 1·C₀ − 1)             = σ(−0.5)
    //   c = tanh(1·2 + 1·0.25)              = tanh(2.25)
    //   C = f·0.5 + i·c;  o = σ(0.25·C + 0.5 + 0.5);  H = o·tanh(C)
    let x = floats([1], [1, 1, 1])
    let w = floats([1, 0, 0, 2], [1, 4, 1])
    let r = floats([0.5, 0, 0, 0.25], [1, 4, 1])
    let b = floats([0, 0.5, 0, 0, 0, 0.5, -1, 0], [1, 8])
    let (h0, c0) = (floats([1], [1, 1, 1]), floats([0.5], [1, 1, 1]))
    let p = floats([0.5, 0.25, 1], [1, 3])
    let outputs = try run(
      "LSTM", [x, w, r, b, nil, h0, c0, p], attributes: [.int("hidden_size", 1)], outputs: 3)
    let c = logistic(-0.5) * 0.5 + logistic(1.75) * tanh(2.25)
    let h = logistic(1 + 0.25 * c) * tanh(c)
    expectClose(outputs[0], [Float(h)], shape: [1, 1, 1, 1])
    expectClose(outputs[1], [Float(h)], shape: [1, 1, 1])
    expectClose(outputs[2], [Float(c)], shape: [1, 1, 1])
  }

  @Test(arguments: [1, 2])
  func matchesReference(directions: Int) throws {
    let problem = RecurrentCase("LSTM", seq: 4, batch: 3, input: 5, hidden: 6, directions: directions, seed: 11)
    let outputs = try run(
      "LSTM", problem.inputs, attributes: [.int("hidden_size", 6), recurrentDirection(directions)], outputs: 3)
    let expected = problem.reference()
    expectClose(outputs[0], expected.y, shape: [4, directions, 3, 6], tolerance: 1e-5)
    expectClose(outputs[1], expected.yh, shape: [directions, 3, 6], tolerance: 1e-5)
    expectClose(outputs[2], expected.yc, shape: [directions, 3, 6], tolerance: 1e-5)
  }

  @Test func bidirectionalShorterSequences() throws {
    // Rows of lengths 5, 2, 0 and 3 in a sequence of 5: the backward direction of each row starts
    // at its own last step; Y is zero past a row's end and a row of length 0 has zero states.
    var problem = RecurrentCase("LSTM", seq: 5, batch: 4, input: 3, hidden: 4, directions: 2, seed: 21)
    problem.lengths = [5, 2, 0, 3]
    let outputs = try run(
      "LSTM", problem.inputs, attributes: [.string("direction", "bidirectional")], outputs: 3)
    let expected = problem.reference()
    expectClose(outputs[0], expected.y, shape: [5, 2, 4, 4], tolerance: 1e-5)
    expectClose(outputs[1], expected.yh, shape: [2, 4, 4], tolerance: 1e-5)
    expectClose(outputs[2], expected.yc, shape: [2, 4, 4], tolerance: 1e-5)
    let y = outputs[0].scalars(as: Float.self)
    #expect(y[((3 * 2 + 1) * 4 + 1) * 4] == 0)  // t = 3, backward, row 1 (length 2)
  }

  @Test func layout1() throws {
    var problem = RecurrentCase("LSTM", seq: 3, batch: 2, input: 2, hidden: 3, directions: 2, seed: 31)
    problem.lengths = [3, 2]
    let expected = problem.reference()
    var inputs = problem.inputs
    for i in [0, 5, 6] { inputs[i] = recurrentSwapLeadingAxes(inputs[i]!) }
    let outputs = try run(
      "LSTM", inputs, attributes: [.int("layout", 1), .string("direction", "bidirectional")], outputs: 3)
    expectClose(outputs[0], recurrentBatchMajor(NDArray(expected.y, shape: [3, 2, 2, 3])), tolerance: 1e-5)
    expectClose(outputs[1], recurrentSwapLeadingAxes(NDArray(expected.yh, shape: [2, 2, 3])), tolerance: 1e-5)
    expectClose(outputs[2], recurrentSwapLeadingAxes(NDArray(expected.yc, shape: [2, 2, 3])), tolerance: 1e-5)
  }

  @Test func optionalInputsOmitted() throws {
    var problem = RecurrentCase("LSTM", seq: 2, batch: 1, input: 2, hidden: 2, directions: 1, seed: 41)
    (problem.b, problem.h0, problem.c0, problem.p) = (nil, nil, nil, nil)
    let y = try runFloat("LSTM", [problem.x, problem.w, problem.r], attributes: [.int("hidden_size", 2)])
    expectClose(y, problem.reference().y, shape: [2, 1, 1, 2], tolerance: 1e-5)
  }

  @Test func inputForgetCouplesTheGates() throws {
    // Size 1, no recurrence: i = σ(1), f = 1 − i, c = tanh(1), C = f·C₀ + i·c, o = σ(0).
    let outputs = try run(
      "LSTM",
      [
        floats([1], [1, 1, 1]), floats([1, 0, 5, 1], [1, 4, 1]), floats([0, 0, 0, 0], [1, 4, 1]), nil, nil, nil,
        floats([2], [1, 1, 1]),
      ],
      attributes: [.int("input_forget", 1)], outputs: 3)
    let c = (1 - logistic(1)) * 2 + logistic(1) * tanh(1)
    expectClose(outputs[2], [Float(c)], shape: [1, 1, 1])
    expectClose(outputs[1], [Float(0.5 * tanh(c))], shape: [1, 1, 1])
  }

  @Test func errors() {
    let problem = RecurrentCase("LSTM", seq: 2, batch: 1, input: 2, hidden: 2, directions: 1, seed: 51)
    expectRuntimeError(containing: "attribute 'activations': unsupported function 'Gelu'") {
      _ = try runFloat(
        "LSTM", problem.inputs,
        attributes: [Attribute("activations", .strings(["Sigmoid", "Gelu", "Tanh"].map { Array($0.utf8) }))])
    }
    expectRuntimeError(containing: "attribute 'hidden_size': is 3") {
      _ = try runFloat("LSTM", problem.inputs, attributes: [.int("hidden_size", 3)])
    }
    expectRuntimeError(containing: "attribute 'layout': is not supported") {
      _ = try runFloat("LSTM", problem.inputs, attributes: [.int("layout", 0)], opset: 13)
    }
    expectRuntimeError(containing: "R has shape [1, 8, 2]; expected [2, 8, 2]") {
      _ = try runFloat("LSTM", problem.inputs, attributes: [.string("direction", "bidirectional")])
    }
    expectRuntimeError(containing: "sequence_lens value 3 is outside 0…2") {
      var inputs = problem.inputs
      inputs[4] = NDArray([Int32(3)], shape: [1])
      _ = try runFloat("LSTM", inputs)
    }
  }
}

@Suite struct GRUTests {
  // Size 1: W = [1, −1, 2] (z, r, h), R = [0.5, 0.5, −1], Wb = [0, 0, 0.5], Rb = [0.25, 0, 0.25],
  // X = 1, H₀ = 0.5: z = σ(1.5), r = σ(−0.75).
  let inputs: [NDArray?] = [
    floats([1], [1, 1, 1]), floats([1, -1, 2], [1, 3, 1]), floats([0.5, 0.5, -1], [1, 3, 1]),
    floats([0, 0, 0.5, 0.25, 0, 0.25], [1, 6]), nil, floats([0.5], [1, 1, 1]),
  ]

  @Test(arguments: [0, 1])
  func oneStepByHand(linearBeforeReset: Int) throws {
    let (z, r) = (logistic(1.5), logistic(-0.75))
    // 0: h = tanh(2 + (r·0.5)·(−1) + 0.25 + 0.5); 1: h = tanh(2 + r·(0.5·(−1) + 0.25) + 0.5).
    let h = linearBeforeReset == 0 ? tanh(2.75 - 0.5 * r) : tanh(2.5 - 0.25 * r)
    let expected = Float((1 - z) * h + z * 0.5)
    let outputs = try run(
      "GRU", inputs, attributes: [.int("hidden_size", 1), .int("linear_before_reset", linearBeforeReset)], outputs: 2)
    expectClose(outputs[0], [expected], shape: [1, 1, 1, 1])
    expectClose(outputs[1], [expected], shape: [1, 1, 1])
  }

  @Test(arguments: [(1, false), (2, false), (1, true), (2, true)])
  func matchesReference(directions: Int, linearBeforeReset: Bool) throws {
    var problem = RecurrentCase("GRU", seq: 4, batch: 3, input: 5, hidden: 6, directions: directions, seed: 61)
    problem.linearBeforeReset = linearBeforeReset
    let outputs = try run(
      "GRU", problem.inputs,
      attributes: [recurrentDirection(directions), .int("linear_before_reset", linearBeforeReset ? 1 : 0)], outputs: 2)
    let expected = problem.reference()
    expectClose(outputs[0], expected.y, shape: [4, directions, 3, 6], tolerance: 1e-5)
    expectClose(outputs[1], expected.yh, shape: [directions, 3, 6], tolerance: 1e-5)
  }

  @Test func bidirectionalShorterSequencesLayout1() throws {
    var problem = RecurrentCase("GRU", seq: 4, batch: 3, input: 2, hidden: 3, directions: 2, seed: 71)
    problem.lengths = [1, 4, 3]
    let expected = problem.reference()
    let layout0 = try run("GRU", problem.inputs, attributes: [.string("direction", "bidirectional")], outputs: 2)
    expectClose(layout0[0], expected.y, shape: [4, 2, 3, 3], tolerance: 1e-5)
    expectClose(layout0[1], expected.yh, shape: [2, 3, 3], tolerance: 1e-5)
    var inputs = problem.inputs
    for i in [0, 5] { inputs[i] = recurrentSwapLeadingAxes(inputs[i]!) }
    let layout1 = try run(
      "GRU", inputs, attributes: [.string("direction", "bidirectional"), .int("layout", 1)], outputs: 2)
    expectClose(layout1[0], recurrentBatchMajor(layout0[0]), tolerance: 1e-6)
    expectClose(layout1[1], recurrentSwapLeadingAxes(layout0[1]), tolerance: 1e-6)
  }

  @Test func reverse() throws {
    // The reverse direction alone equals the backward half of a bidirectional node.
    let problem = RecurrentCase("GRU", seq: 3, batch: 2, input: 2, hidden: 2, directions: 2, seed: 81)
    let both = try run("GRU", problem.inputs, attributes: [.string("direction", "bidirectional")], outputs: 2)
    let backward = problem.inputs.map { input -> NDArray? in
      guard let input, input.shape.first == 2, input.rank == 3 || input.rank == 2 else { return input }
      let half = input.count / 2
      return input.slice(elements: half..<input.count, shape: [1] + Array(input.shape[1...]))
    }
    let reversed = try run("GRU", backward, attributes: [.string("direction", "reverse")], outputs: 2)
    let y = both[0].scalars(as: Float.self)
    var expected: [Float] = []
    for t in 0..<3 { expected += y[((t * 2 + 1) * 2 * 2)..<((t * 2 + 2) * 2 * 2)] }
    expectClose(reversed[0], expected, shape: [3, 1, 2, 2], tolerance: 1e-6)
    expectClose(reversed[1], Array(both[1].scalars(as: Float.self)[4...]), shape: [1, 2, 2], tolerance: 1e-6)
  }
}

@Suite struct RNNTests {
  @Test func reverseWithSequenceLengthByHand() throws {
    // W = R = 1, tanh: row 0 (length 2) runs t = 1 then t = 0; row 1 (length 3) runs t = 2, 1, 0.
    let x = floats([0.1, 0.4, 0.2, 0.5, 0.3, 0.6], [3, 2, 1])
    let outputs = try run(
      "RNN", [x, floats([1], [1, 1, 1]), floats([1], [1, 1, 1]), nil, NDArray([Int32(2), 3], shape: [2])],
      attributes: [.string("direction", "reverse")], outputs: 2)
    let row0 = [tanh(0.1 + tanh(0.2)), tanh(0.2)]
    let r2 = tanh(0.6)
    let r1 = tanh(0.5 + r2)
    let row1 = [tanh(0.4 + r1), r1, r2]
    let y = [row0[0], row1[0], row0[1], row1[1], 0, row1[2]].map { Float($0) }
    expectClose(outputs[0], y, shape: [3, 1, 2, 1])
    expectClose(outputs[1], [Float(row0[0]), Float(row1[0])], shape: [1, 2, 1])
  }

  @Test func bidirectionalFinalStates() throws {
    // No recurrence: H_t = tanh(x_t), so Y_h is the last step forward and the first step backward.
    let x = floats([0.5, -1, 2], [3, 1, 1])
    let outputs = try run(
      "RNN", [x, floats([1, 1], [2, 1, 1]), floats([0, 0], [2, 1, 1])],
      attributes: [.string("direction", "bidirectional")], outputs: 2)
    let h = [0.5, -1, 2].map { Float(tanh($0)) }
    expectClose(outputs[0], [h[0], h[0], h[1], h[1], h[2], h[2]], shape: [3, 2, 1, 1])
    expectClose(outputs[1], [h[2], h[0]], shape: [2, 1, 1])
  }

  @Test func matchesReference() throws {
    var problem = RecurrentCase("RNN", seq: 5, batch: 2, input: 3, hidden: 4, directions: 2, seed: 91)
    problem.lengths = [4, 5]
    let outputs = try run("RNN", problem.inputs, attributes: [.string("direction", "bidirectional")], outputs: 2)
    let expected = problem.reference()
    expectClose(outputs[0], expected.y, shape: [5, 2, 2, 4], tolerance: 1e-5)
    expectClose(outputs[1], expected.yh, shape: [2, 2, 4], tolerance: 1e-5)
  }

  @Test func otherActivationsAndClip() throws {
    // Relu of the clipped input: x = 3 clips to 1, x = −2 to −1 (Relu 0).
    let x = floats([3, -2], [2, 1, 1])
    let y = try runFloat(
      "RNN", [x, floats([1], [1, 1, 1]), floats([0], [1, 1, 1])],
      attributes: [Attribute("activations", .strings([Array("Relu".utf8)])), .float("clip", 1)])
    expectClose(y, [1, 0], shape: [2, 1, 1, 1])
    // HardSigmoid with explicit alpha and beta: 0.5·x + 0.25.
    let hard = try runFloat(
      "RNN", [floats([1], [1, 1, 1]), floats([1], [1, 1, 1]), floats([0], [1, 1, 1])],
      attributes: [
        Attribute("activations", .strings([Array("HardSigmoid".utf8)])), Attribute("activation_alpha", .floats([0.5])),
        Attribute("activation_beta", .floats([0.25])),
      ])
    expectClose(hard, [0.75], shape: [1, 1, 1, 1])
  }
}
