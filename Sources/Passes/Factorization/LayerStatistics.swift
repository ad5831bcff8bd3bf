import Graph
import Linalg
import Runtime

/// Calibration rows of one layer: its inputs X̂ in the current model (rows × d_in; a Conv's
/// im2col patches) and its bias-free outputs Y in the original model (rows × d_out), so a fit
/// `min ‖Y − X̂·W'‖` compensates the error of the layers rewritten before it (asymmetric
/// reconstruction, METHODS §4.2). Rows are subsampled to `rowLimit` (a seeded uniform sample).
struct LayerStatistics {
  var inputs: Matrix
  var targets: Matrix
  /// ‖Y + bias‖² over the same rows: the energy of the layer's output tensor as the model holds it
  /// (nil: no bias, the targets' own energy). The reported errors are relative to it, so they are
  /// what `rebirth verify --tensor` measures on the layer's output.
  var outputEnergy: Double? = nil
  /// The same layer's rows on the held-out calibration samples, when the driver collected them
  /// (`collect(…, heldOut: true)`): what the reported `output_error` is measured on.
  var heldOutRows: (inputs: Matrix, targets: Matrix, outputEnergy: Double?)? = nil

  /// The held-out rows as statistics of their own (nil when there are none).
  var heldOut: LayerStatistics? {
    heldOutRows.map { LayerStatistics(inputs: $0.inputs, targets: $0.targets, outputEnergy: $0.outputEnergy) }
  }

  var rows: Int { inputs.rows }
  /// ‖Y‖².
  var targetEnergy: Double { inputs.rows == 0 ? 0 : squaredNorm(targets.elements) }

  /// ‖Y − X̂·W‖ / ‖Y‖ for `w` (d_in × d_out).
  func relativeOutputError(of w: Matrix) -> Double {
    relative(inputs.multiplied(by: w))
  }

  /// ‖Y − X̂·A·B‖ / ‖Y‖.
  func relativeOutputError(a: Matrix, b: Matrix) -> Double {
    relative(inputs.multiplied(by: a).multiplied(by: b))
  }

  /// ‖Y − X̂·W‖ / ‖Y + bias‖ for `w`: the relative error of the layer's output tensor (bias
  /// included in the scale, as `rebirth verify --tensor` measures it), which the report gives.
  func relativeTensorError(of w: Matrix) -> Double {
    let error = relativeOutputError(of: w)
    guard let energy = outputEnergy, energy > 0 else { return error }
    let scale = targetEnergy
    return scale > 0 ? error * (scale / energy).squareRoot() : error / energy.squareRoot()
  }

  /// ‖Y − P‖ / ‖Y‖ for predictions `p`.
  func relative(_ p: Matrix) -> Double {
    let energy = targetEnergy
    var sum = 0.0
    for (y, q) in zip(targets.elements, p.elements) { sum += Double(y - q) * Double(y - q) }
    return energy > 0 ? (sum / energy).squareRoot() : sum.squareRoot()
  }

  /// X̂ᵀX̂ + δI with δ = `ridge`·trace/d_in (and at least a tiny floor), for definiteness.
  func gram(ridge: Double = 1e-5) -> Matrix {
    var g = inputs.multiplied(by: inputs, transposingSelf: true)
    let n = g.rows
    var trace = 0.0
    for i in 0..<n { trace += Double(g[i, i]) }
    let delta = Float(max(ridge * trace / Double(max(n, 1)), 1e-12))
    for i in 0..<n { g[i, i] += delta }
    return g
  }

  /// The lower-triangular L with X̂ᵀX̂ + δI = L·Lᵀ (METHODS §5.1).
  /// A float Gram matrix of rank-deficient inputs may fail Cholesky: the ridge grows ×100 up to
  /// 1e-1 before giving up.
  func whitening(ridge: Double = 1e-5) throws -> Matrix {
    var delta = ridge
    while true {
      do { return try gram(ridge: delta).choleskyFactor() } catch {
        guard delta < 1e-1 else { throw error }
        delta *= 100
      }
    }
  }

  /// The statistics of each of `layers` from one calibration run on the fitting samples, or with
  /// `heldOut` on the held-out ones (nil when the rewriter has no calibration data, or no held-out
  /// samples disjoint from the fitting ones; a layer's entry is nil when its activations cannot be
  /// read as rows).
  static func collect(for layers: [EligibleLayer], _ rewriter: Rewriter, rowLimit: Int = 8192, heldOut: Bool = false) throws
    -> [LayerStatistics?]?
  {
    guard let calibration = rewriter.approximation.calibration, !calibration.fitting.isEmpty else { return nil }
    guard !heldOut || calibration.heldOutIsDisjoint else { return nil }
    let samples = heldOut ? calibration.heldOut : calibration.fitting
    let graph = rewriter.graph, original = rewriter.original.graph
    var current: [String] = [], reference: [String] = []
    for layer in layers {
      current.append(graph[layer.node.input(0)!].name)
      let y = graph[layer.node.output(0)!].name
      if let v = original.value(named: y), original[v].producer != nil { reference.append(y) } else { current.append(y) }
    }
    current = Array(Set(current)).sorted()
    reference = Array(Set(reference)).sorted()
    let threads = rewriter.approximation.threads
    let now = try calibration.activations(of: current, in: rewriter.model, on: samples, threads: threads)
    let before = reference.isEmpty
      ? [] : try calibration.activations(of: reference, in: rewriter.original, on: samples, threads: threads)
    return layers.map { layer in
      let x = graph[layer.node.input(0)!].name, y = graph[layer.node.output(0)!].name
      guard let xi = current.firstIndex(of: x) else { return nil }
      let xs = now.map { $0[xi] }
      let ys: [NDArray]
      if let yi = reference.firstIndex(of: y) { ys = before.map { $0[yi] } } else if let yi = current.firstIndex(of: y) {
        ys = now.map { $0[yi] }
      } else { return nil }
      let limit = max(layer.inputs, min(rowLimit, (1 << 24) / max(1, max(layer.inputs, layer.outputs))))
      return rows(of: layer, inputs: xs, outputs: ys, graph: graph, limit: limit)
    }
  }

  /// The layer's rows, or nil when the arrays do not have the shapes the layer implies.
  private static func rows(of layer: EligibleLayer, inputs xs: [NDArray], outputs ys: [NDArray], graph: Graph, limit: Int)
    -> LayerStatistics?
  {
    guard xs.allSatisfy({ $0.dtype == .float }), ys.allSatisfy({ $0.dtype == .float }) else { return nil }
    let bias = layer.bias(in: graph)
    var reader: [RowReader] = []
    for (x, y) in zip(xs, ys) {
      guard let r = RowReader(layer: layer, x: x, y: y) else { return nil }
      reader.append(r)
    }
    let total = reader.reduce(0) { $0 + $1.count }
    guard total > 0 else { return nil }
    let picked = sampledRows(total: total, limit: limit)
    var xOut = [Float](repeating: 0, count: picked.count * layer.inputs)
    var yOut = [Float](repeating: 0, count: picked.count * layer.outputs)
    var sample = 0, offset = 0
    var energy = 0.0
    for (k, global) in picked.enumerated() {
      while global - offset >= reader[sample].count {
        offset += reader[sample].count
        sample += 1
      }
      reader[sample].read(row: global - offset, into: &xOut, at: k * layer.inputs, target: &yOut, at: k * layer.outputs, bias: bias)
      if bias != nil { energy += reader[sample].outputEnergy(row: global - offset) }
    }
    return LayerStatistics(
      inputs: Matrix(rows: picked.count, columns: layer.inputs, elements: xOut),
      targets: Matrix(rows: picked.count, columns: layer.outputs, elements: yOut), outputEnergy: bias == nil ? nil : energy)
  }
}

/// At most `limit` of the row indices 0..<total, in order: all of them, or a seeded uniform sample
/// without replacement. A regular stride would pick the same columns of every output row of a
/// conv (every second one when the stride is 2 and the width even), biasing both the fit and the
/// reported error wherever the error is not uniform across the image (e.g. padded borders).
func sampledRows(total: Int, limit: Int) -> [Int] {
  guard total > limit else { return Array(0..<total) }
  var generator = SplitMix64(seed: UInt64(total) &* 0x9E37_79B9 &+ UInt64(limit))
  var indices = Array(0..<total)
  for k in 0..<limit { indices.swapAt(k, Int.random(in: k..<total, using: &generator)) }
  return indices[0..<limit].sorted()
}

extension EligibleLayer {
  /// What the layer adds to x·W, per output channel (or per element of a Gemm's output), when it
  /// is a constant: Gemm's beta·C, a Conv's B. MatMul adds nothing (its bias is a separate Add).
  fileprivate func bias(in graph: Graph) -> [Float]? {
    guard node.opType != OpType.matMul, let c = graph.constant(node.input(2))?.floats else { return nil }
    let beta = node.attribute("beta")?.float ?? 1
    return c.map { $0 * (node.opType == OpType.gemm ? beta : 1) }
  }
}

/// Reads row i of one sample: the layer's input vector (a Conv's patch) and its output vector.
private struct RowReader {
  let x: [Float], y: [Float]
  let count: Int
  let dIn: Int, dOut: Int
  /// For a 2-D Conv: input [C, H, W] per image, output [M, Ho, Wo].
  var conv: (c: Int, h: Int, w: Int, kh: Int, kw: Int, ho: Int, wo: Int, stride: [Int], dilation: [Int], pad: [Int])?

  init?(layer: EligibleLayer, x: NDArray, y: NDArray) {
    self.x = x.scalars(as: Float.self)
    self.y = y.scalars(as: Float.self)
    dIn = layer.inputs
    dOut = layer.outputs
    switch layer.kind {
    case .matMul, .gemm:
      guard x.count % dIn == 0, y.count % dOut == 0, x.count / dIn == y.count / dOut else { return nil }
      count = x.count / dIn
    case .conv(let kernel):
      guard kernel.count == 2, x.rank == 4, y.rank == 4, x.shape[0] == y.shape[0], y.shape[1] == dOut,
        x.shape[1] * kernel[0] * kernel[1] == dIn, let geometry = ConvGeometry(layer.node, kernel: kernel, input: x.shape, output: y.shape)
      else { return nil }
      conv = (x.shape[1], x.shape[2], x.shape[3], kernel[0], kernel[1], y.shape[2], y.shape[3],
              geometry.strides, geometry.dilations, geometry.pads)
      count = x.shape[0] * y.shape[2] * y.shape[3]
    }
  }

  /// Σ y² over row i's output vector (bias included, as the model holds it).
  func outputEnergy(row i: Int) -> Double {
    var sum = 0.0
    guard let g = conv else {
      for j in 0..<dOut { sum += Double(y[i * dOut + j]) * Double(y[i * dOut + j]) }
      return sum
    }
    let n = i / (g.ho * g.wo), p = (i / g.wo) % g.ho, q = i % g.wo
    for m in 0..<dOut {
      let v = Double(y[((n * dOut + m) * g.ho + p) * g.wo + q])
      sum += v * v
    }
    return sum
  }

  func read(row i: Int, into xs: inout [Float], at xAt: Int, target ys: inout [Float], at yAt: Int, bias: [Float]?) {
    guard let g = conv else {
      for j in 0..<dIn { xs[xAt + j] = x[i * dIn + j] }
      for j in 0..<dOut {
        let b = bias.map { $0.count == dOut ? $0[j] : $0.count == 1 ? $0[0] : $0.count == count * dOut ? $0[i * dOut + j] : 0 } ?? 0
        ys[yAt + j] = y[i * dOut + j] - b
      }
      return
    }
    let n = i / (g.ho * g.wo), p = (i / g.wo) % g.ho, q = i % g.wo
    var k = xAt
    for c in 0..<g.c {
      for u in 0..<g.kh {
        let r = p * g.stride[0] + u * g.dilation[0] - g.pad[0]
        for v in 0..<g.kw {
          let s = q * g.stride[1] + v * g.dilation[1] - g.pad[1]
          xs[k] = r >= 0 && r < g.h && s >= 0 && s < g.w ? x[((n * g.c + c) * g.h + r) * g.w + s] : 0
          k += 1
        }
      }
    }
    for m in 0..<dOut {
      ys[yAt + m] = y[((n * dOut + m) * g.ho + p) * g.wo + q] - (bias.map { $0.count == dOut ? $0[m] : 0 } ?? 0)
    }
  }
}

/// A 2-D Conv's strides, dilations and begin pads, with auto_pad resolved from the shapes.
private struct ConvGeometry {
  var strides: [Int], dilations: [Int], pads: [Int]

  init?(_ node: Node, kernel: [Int], input: [Int], output: [Int]) {
    strides = node.attribute("strides")?.ints?.map { Int($0) } ?? [1, 1]
    dilations = node.attribute("dilations")?.ints?.map { Int($0) } ?? [1, 1]
    guard strides.count == 2, dilations.count == 2, kernel.count == 2 else { return nil }
    let autoPad = node.attribute("auto_pad")?.string ?? "NOTSET"
    switch autoPad {
    case "NOTSET":
      let p = node.attribute("pads")?.ints?.map { Int($0) } ?? [0, 0, 0, 0]
      guard p.count == 4 else { return nil }
      pads = [p[0], p[1]]
    case "VALID":
      pads = [0, 0]
    case "SAME_UPPER", "SAME_LOWER":
      let (s, d) = (strides, dilations)
      pads = (0..<2).map { a in
        let total = max(0, (output[a + 2] - 1) * s[a] + (kernel[a] - 1) * d[a] + 1 - input[a + 2])
        return autoPad == "SAME_UPPER" ? total / 2 : total - total / 2
      }
    default:
      return nil
    }
  }
}

func squaredNorm(_ values: [Float]) -> Double {
  var sum = 0.0
  for v in values { sum += Double(v) * Double(v) }
  return sum
}
