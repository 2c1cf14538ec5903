// nexo's YAML reader: one YAML 1.2 document -> nodes with their offsets, for the config reader's positioned
// messages. Block and flow mappings and sequences, plain, quoted and block scalars, comments, anchors and
// aliases (never expanded); the core schema. Not supported, each with a message that says so: complex keys
// (`? `), tags other than !!str, directives, several documents. The npm `yaml` package did this before; as
// CommonJS it brought up Deno's Node layer, +10.8 MiB idle RSS (DEVELOPERS.md). Errors stop at the first.

import type { ScalarValue } from "./yaml_scalar.ts";
import { BlockReader } from "./yaml_block.ts";
import { LinePositions, MAX_DEPTH, SyntaxFailure } from "./yaml_source.ts";

export type { ScalarValue } from "./yaml_scalar.ts";
export { LinePositions, MAX_DEPTH };

interface NodeBase {
  /** Offsets in the text: where the node starts (after its anchor) and where it ends. */
  range: [number, number];
  anchor?: string;
}
export interface YamlScalar extends NodeBase {
  kind: "scalar";
  value: ScalarValue;
  /** The scalar's text before the schema read it: `0x1F` for 31, the unescaped text of a quoted one. */
  source: string;
}
export interface YamlPair {
  key: YamlNode;
  /** null for `key:` with nothing after it. */
  value: YamlNode | null;
}
export interface YamlMap extends NodeBase {
  kind: "map";
  items: YamlPair[];
}
export interface YamlSeq extends NodeBase {
  kind: "seq";
  /** null for an empty entry (`-` with nothing after it). */
  items: (YamlNode | null)[];
}
export interface YamlAlias extends NodeBase {
  kind: "alias";
  /** The anchor's name, without the `*`. */
  source: string;
  /** The node last anchored with that name before the alias; undefined when there is none. */
  target: YamlNode | undefined;
}
export type YamlNode = YamlScalar | YamlMap | YamlSeq | YamlAlias;

export interface YamlSyntaxError {
  /** Offset in the text where the problem is. */
  offset: number;
  message: string;
}

/** The document's top node (null when the file holds none), or the first syntax error. */
export type YamlDocument = { root: YamlNode | null; error: null } | { root: null; error: YamlSyntaxError };

export const isMap = (node: unknown): node is YamlMap => (node as YamlNode | null)?.kind === "map";
export const isSeq = (node: unknown): node is YamlSeq => (node as YamlNode | null)?.kind === "seq";
export const isScalar = (node: unknown): node is YamlScalar => (node as YamlNode | null)?.kind === "scalar";
export const isAlias = (node: unknown): node is YamlAlias => (node as YamlNode | null)?.kind === "alias";

/** Parses `text` as one YAML document. Never throws on any input. */
export function parseYaml(text: string): YamlDocument {
  try {
    return { root: new BlockReader(text).document(), error: null };
  } catch (error) {
    if (error instanceof SyntaxFailure) {
      return { root: null, error: { offset: error.offset, message: error.message } };
    }
    throw error;
  }
}
