/// A frame source fed while it is written (a live detector stream): frames arrive in increasing
/// order and the stream may end before the dataset's last declared frame. Writers ask before each
/// chunk and leave the chunks of frames that never arrived unwritten (HDF5: fill value 0, no
/// storage); frames read past the end are zeros.
public protocol ArrivingFrameSource: FrameSource {
    /// Blocks until frame `index` has arrived (true) or the stream has ended before it (false).
    func waitForFrame(_ index: Int) -> Bool
}
