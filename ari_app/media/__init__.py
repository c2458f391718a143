"""Call audio: RTP, G.711/slin codecs, resampling, pacing, and the transport boundary.

Everything above this package sees only `MediaTransport` and 8 kHz int16 little-endian PCM.
"""

from ari_app.media.codecs import Codec, CodecName, get_codec
from ari_app.media.ports import PortPool
from ari_app.media.resample import Resampler, resample
from ari_app.media.rtp import RtpError, RtpPacket
from ari_app.media.rtp_transport import RtpTransport
from ari_app.media.transport import AudioFrame, MediaError, MediaStats, MediaTransport, PlayResult

__all__ = [
    "AudioFrame",
    "Codec",
    "CodecName",
    "MediaError",
    "MediaStats",
    "MediaTransport",
    "PlayResult",
    "PortPool",
    "Resampler",
    "RtpError",
    "RtpPacket",
    "RtpTransport",
    "get_codec",
    "resample",
]
