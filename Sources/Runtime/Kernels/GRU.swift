/// GRU (float32), gates in ONNX order z, r, h:
///
///     z = f(X·Wzᵀ + H·Rzᵀ + Wbz + Rbz)
///     r = f(X·Wrᵀ + H·Rrᵀ + Wbr + Rbr)
///     h = g(X·Whᵀ + (r ⊙ H)·Rhᵀ + Rbh + Wbh)          linear_before_reset = 0
///     h = g(X·Whᵀ + r ⊙ (H·Rhᵀ + Rbh) + Wbh)          linear_before_reset = 1
///     H' = (1 − z) ⊙ h + z ⊙ H
///
/// with f, g = Sigmoid, Tanh unless `activations` says otherwise; `clip` bounds every activation's
/// input. Directions, layouts and sequence lengths: see `RecurrentDriver`. Inputs X, W, R, B,
/// sequence_lens, initial_h; outputs Y, Y_h.
struct GRU: Kernel {
  let attributes: RecurrentAttributes
  let linearBeforeReset: Bool

  init(_ builder: KernelBuilder) throws {
    attributes = try RecurrentAttributes(builder, defaults: ["Sigmoid", "Tanh"])
    // Opset 1 has no linear_before_reset: it behaves as 0, and carrying it there is an error.
    let linear = builder.opset >= 3 ? try builder.int("linear_before_reset", default: 0) : 0
    linearBeforeReset = linear != 0
  }

  func run(_ context: KernelContext) throws -> [NDArray] {
    let attributes = self.attributes
    let linearBeforeReset = self.linearBeforeReset
    return try RecurrentDriver.run(
      context, attributes, gates: 3, cellState: false,
      projectionBias: { b, hidden in
        guard let b else { return Array(repeating: 0, count: 3 * hidden) }
        // With linear_before_reset, Rbh is added inside the reset product instead.
        let folded = linearBeforeReset ? 2 * hidden : 3 * hidden
        return (0..<(3 * hidden)).map { $0 < folded ? b[$0] + b[3 * hidden + $0] : b[$0] }
      }
    ) { s in
      let (n, clip) = (s.hidden, attributes.clip)
      let fAct = attributes.activations[2 * s.direction]
      let gAct = attributes.activations[2 * s.direction + 1]
      let width = 3 * n
      // z and r: gates[:, 0..<2n] += H · [Rz; Rr]ᵀ.
      s.accumulateRecurrence(s.h, rowOffset: 0, count: 2 * n, into: s.gates, ldc: width)
      if linearBeforeReset {
        // work = H · Rhᵀ, then h = g(gh + r ⊙ (work + Rbh)).
        s.accumulateRecurrence(s.h, rowOffset: 2 * n, count: n, into: s.work, ldc: n, beta: 0)
        let rbh = s.bias.map { $0 + 5 * n }
        s.forEachRows { rows in
          for b in rows where s.isActive(b) {
            let (gz, gr, gh) = (s.gates + width * b, s.gates + width * b + n, s.gates + width * b + 2 * n)
            let hr = s.work + b * n
            fAct.apply(gz, count: n, clip: clip)
            fAct.apply(gr, count: n, clip: clip)
            if let rbh {
              for j in 0..<n { gh[j] += gr[j] * (hr[j] + rbh[j]) }
            } else {
              for j in 0..<n { gh[j] += gr[j] * hr[j] }
            }
            gAct.apply(gh, count: n, clip: clip)
            let hb = s.h + b * n
            for j in 0..<n { hb[j] = (1 - gz[j]) * gh[j] + gz[j] * hb[j] }
          }
        }
        return
      }
      // work = r ⊙ H, then gates[:, 2n..<3n] += work · Rhᵀ.
      s.forEachRows { rows in
        for b in rows where s.isActive(b) {
          let (gz, gr) = (s.gates + width * b, s.gates + width * b + n)
          fAct.apply(gz, count: n, clip: clip)
          fAct.apply(gr, count: n, clip: clip)
          let (hb, rh) = (s.h + b * n, s.work + b * n)
          for j in 0..<n { rh[j] = gr[j] * hb[j] }
        }
      }
      s.accumulateRecurrence(s.work, rowOffset: 2 * n, count: n, into: s.gates + 2 * n, ldc: width)
      s.forEachRows { rows in
        for b in rows where s.isActive(b) {
          let (gz, gh) = (s.gates + width * b, s.gates + width * b + 2 * n)
          gAct.apply(gh, count: n, clip: clip)
          let hb = s.h + b * n
          for j in 0..<n { hb[j] = (1 - gz[j]) * gh[j] + gz[j] * hb[j] }
        }
      }
    }
  }
}
