/// LSTM (float32), gates in ONNX order i, o, f, c (W, R, B and the peepholes P in i, o, f):
///
///     i = f(X·Wiᵀ + H·Riᵀ + Pi ⊙ C + Wbi + Rbi)
///     f = f(X·Wfᵀ + H·Rfᵀ + Pf ⊙ C + Wbf + Rbf)      (1 − i with input_forget = 1)
///     c = g(X·Wcᵀ + H·Rcᵀ + Wbc + Rbc)
///     C' = f ⊙ C + i ⊙ c
///     o = f(X·Woᵀ + H·Roᵀ + Po ⊙ C' + Wbo + Rbo)
///     H' = o ⊙ h(C')
///
/// with f, g, h = Sigmoid, Tanh, Tanh unless `activations` says otherwise; `clip` bounds the inputs
/// of f and g (not the cell state going into h, as onnxruntime does). Directions, layouts and
/// sequence lengths: see `RecurrentDriver`. Inputs X, W, R, B, sequence_lens, initial_h,
/// initial_c, P; outputs Y, Y_h, Y_c.
struct LSTM: Kernel {
  let attributes: RecurrentAttributes
  let inputForget: Bool

  init(_ builder: KernelBuilder) throws {
    attributes = try RecurrentAttributes(builder, defaults: ["Sigmoid", "Tanh", "Tanh"])
    let coupled = try builder.int("input_forget", default: 0)
    guard coupled == 0 || coupled == 1 else { throw builder.unsupported("input_forget", coupled) }
    inputForget = coupled == 1
  }

  func run(_ context: KernelContext) throws -> [NDArray] {
    let attributes = self.attributes
    let inputForget = self.inputForget
    let peepholeInput = context.optionalInput(7)
    var peepholes: [Float]? = nil
    return try RecurrentDriver.run(
      context, attributes, gates: 4, cellState: true,
      projectionBias: { b, hidden in
        guard let b else { return Array(repeating: 0, count: 4 * hidden) }
        return (0..<(4 * hidden)).map { b[$0] + b[4 * hidden + $0] }
      },
      validate: { directions, hidden throws(RuntimeError) in
        guard let p = peepholeInput else { return }
        guard p.dtype == .float else { throw context.unsupportedType(p.dtype, input: 7) }
        guard p.shape == [directions, 3 * hidden] else {
          throw context.error("P has shape \(describe(shape: p.shape)); expected [\(directions), \(3 * hidden)]")
        }
        peepholes = p.scalars(as: Float.self)
      }
    ) { s in
      let (n, clip) = (s.hidden, attributes.clip)
      let fAct = attributes.activations[3 * s.direction]
      let gAct = attributes.activations[3 * s.direction + 1]
      let hAct = attributes.activations[3 * s.direction + 2]
      s.accumulateRecurrence(s.h, rowOffset: 0, count: 4 * n, into: s.gates, ldc: 4 * n)
      let c = s.c!
      peepholes.withPeepholes(direction: s.direction, hidden: n) { p in
        s.forEachRows { rows in
          for b in rows where s.isActive(b) {
            let (gi, go, gf, gc) = (
              s.gates + 4 * n * b, s.gates + 4 * n * b + n, s.gates + 4 * n * b + 2 * n, s.gates + 4 * n * b + 3 * n
            )
            let (cb, hb) = (c + b * n, s.h + b * n)
            if let p {
              let (pi, pf) = (p, p + 2 * n)
              for j in 0..<n {
                gi[j] += pi[j] * cb[j]
                gf[j] += pf[j] * cb[j]
              }
            }
            fAct.apply(gi, count: n, clip: clip)
            if inputForget {
              for j in 0..<n { gf[j] = 1 - gi[j] }
            } else {
              fAct.apply(gf, count: n, clip: clip)
            }
            gAct.apply(gc, count: n, clip: clip)
            for j in 0..<n { cb[j] = gf[j] * cb[j] + gi[j] * gc[j] }
            if let p {
              let po = p + n
              for j in 0..<n { go[j] += po[j] * cb[j] }
            }
            fAct.apply(go, count: n, clip: clip)
            gc.update(from: cb, count: n)
            hAct.apply(gc, count: n, clip: nil)
            for j in 0..<n { hb[j] = go[j] * gc[j] }
          }
        }
      }
    }
  }
}

extension Optional where Wrapped == [Float] {
  /// `body` with a pointer to direction `direction`'s 3·hidden peephole weights, or nil.
  fileprivate func withPeepholes<R>(direction: Int, hidden: Int, _ body: (UnsafePointer<Float>?) -> R) -> R {
    guard let self else { return body(nil) }
    return self.withUnsafeBufferPointer { body($0.baseAddress! + direction * 3 * hidden) }
  }
}
