// zstd for kafkajs, which ships only gzip: registered in kafkajs's codec table on import, so a
// producer may write zstd record batches and every consumer in this package reads them. The
// codec is native code shipped inside the npm package (no download or compiler at install).
// kcat and the Java client read zstd batches natively.
import { compress, decompress } from '@mongodb-js/zstd';
import { CompressionCodecs, CompressionTypes } from 'kafkajs';

/** Codecs a Kafka writer of this package can use, by option value. */
export const KAFKA_COMPRESSION = {
  none: CompressionTypes.None,
  gzip: CompressionTypes.GZIP,
  zstd: CompressionTypes.ZSTD,
} as const;
export type KafkaCompression = keyof typeof KAFKA_COMPRESSION;

/** zstd level 3 (zstd's default): near its best ratio on batch columns at a fraction of the CPU of higher levels. */
const ZSTD_LEVEL = 3;

CompressionCodecs[CompressionTypes.ZSTD] = () => ({
  compress: (encoder: { buffer: Buffer }) => compress(encoder.buffer, ZSTD_LEVEL),
  decompress: (buffer: Buffer) => decompress(buffer),
});
