import EMConvTestSupport

/// libFuzzer entry point of the 'sidecar' target (input layout: `FuzzTarget.sidecar`).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTarget(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    Fuzz.run(.sidecar, data, size)
}
