"""The one SDP offer/answer shape we use: audio, PCMU (0) + telephone-event (101), ptime 20."""

from __future__ import annotations

from dataclasses import dataclass

PT_PCMU = 0
PT_TELEPHONE_EVENT = 101


class SdpError(ValueError):
    """The peer's SDP has no usable audio stream; the message says what is missing."""


@dataclass(frozen=True)
class SdpMedia:
    ip: str
    port: int
    payload_types: tuple[int, ...]
    dtmf_payload_type: int | None


def build_sdp(ip: str, rtp_port: int, session_id: int, user: str = "ari-app-test", version: int = 1) -> bytes:
    lines = [
        "v=0",
        f"o={user} {session_id} {version} IN IP4 {ip}",
        "s=ari-app test peer",
        f"c=IN IP4 {ip}",
        "t=0 0",
        f"m=audio {rtp_port} RTP/AVP {PT_PCMU} {PT_TELEPHONE_EVENT}",
        f"a=rtpmap:{PT_PCMU} PCMU/8000",
        f"a=rtpmap:{PT_TELEPHONE_EVENT} telephone-event/8000",
        f"a=fmtp:{PT_TELEPHONE_EVENT} 0-16",
        "a=ptime:20",
        "a=sendrecv",
    ]
    return ("\r\n".join(lines) + "\r\n").encode()


def parse_sdp(body: bytes) -> SdpMedia:
    ip = ""
    port = -1
    pts: tuple[int, ...] = ()
    dtmf_pt: int | None = None
    in_audio = False
    for raw in body.decode("utf-8", "replace").splitlines():
        line = raw.strip()
        if line.startswith("m="):
            in_audio = line.startswith("m=audio ") and port < 0
        if line.startswith("c="):
            # A media-level c= line (inside our m=audio section) overrides the session one.
            parts = line[2:].split()
            if len(parts) >= 3 and (not ip or in_audio):
                ip = parts[2].split("/")[0]
        elif line.startswith("m=audio ") and port < 0:
            parts = line[2:].split()
            try:
                port = int(parts[1].split("/")[0])
                pts = tuple(int(p) for p in parts[3:])
            except (IndexError, ValueError):
                raise SdpError(f"SDP media line {line!r} is not 'm=audio <port> RTP/AVP <pt>...'") from None
        elif line.startswith("a=rtpmap:") and "telephone-event" in line.lower():
            dtmf_pt = int(line[len("a=rtpmap:") :].split()[0])
    if port <= 0:
        raise SdpError("SDP has no m=audio line with a port (the call has no audio)")
    if not ip:
        raise SdpError("SDP has no c= connection address")
    if PT_PCMU not in pts:
        raise SdpError(f"SDP audio offers payload types {pts}, not PCMU (0)")
    return SdpMedia(ip, port, pts, dtmf_pt)
