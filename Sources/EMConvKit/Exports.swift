// One import for library users and the CLI: the catalog, the converter and every module below them.
@_exported import EMCore
@_exported import EMHDF5
@_exported import FormatMIB
@_exported import FormatEMPAD
@_exported import FormatDM
@_exported import FormatRaw
@_exported import FormatEMD
@_exported import FormatDectris
@_exported import FormatNeXus
@_exported import FormatTIA
@_exported import FormatTIFFRead
@_exported import FormatMRC
@_exported import FormatHyperSpy
@_exported import WriterZspy
@_exported import WriterHSpy
@_exported import WriterTIFF
@_exported import WriterEMD1
