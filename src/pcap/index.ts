/**
 * Captures that tcpdump and Wireshark read: classic pcap and pcapng encoders (pure,
 * into a caller's buffer), a reader for both, and a streaming writer with bounded memory,
 * rotation and close-on-signal.
 */
export {
  capturedLength,
  encodePcapGlobalHeader,
  encodePcapRecord,
  LINKTYPE_ETHERNET,
  MAX_SNAPLEN,
  PCAP_GLOBAL_HEADER_LEN,
  PCAP_MAGIC_MICROS,
  PCAP_MAGIC_NANOS,
  PCAP_RECORD_HEADER_LEN,
  pcapGlobalHeaderLen,
  pcapRecordLen,
  type PcapFileHeader,
  type PcapRecord,
  type PcapResolution,
} from './pcap.js';
export {
  BLOCK_EPB,
  BLOCK_IDB,
  BLOCK_SHB,
  encodeEpb,
  encodeIdb,
  encodeShb,
  epbLen,
  idbLen,
  MAX_OPTION_VALUE_LEN,
  optionStringLen,
  shbLen,
  TSRESOL_NANOS,
  type EnhancedPacket,
  type InterfaceDescription,
  type SectionHeader,
} from './pcapng.js';
export {
  CaptureFormatError,
  readCapture,
  unitsToNs,
  type CaptureFile,
  type CaptureFileInterface,
  type CaptureFileRecord,
  type CaptureFormat,
} from './reader.js';
export {
  CaptureWriter,
  installCloseOnSignals,
  nodeCaptureIo,
  rotatedPath,
  wallClock,
  type CaptureIo,
  type CaptureStats,
  type CaptureWriterOptions,
  type Closable,
  type InterfaceSpec,
} from './writer.js';
